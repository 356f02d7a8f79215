//! `keys init/add/revoke`: the fleet's keys (see `crate::keys`).

use super::{CmdResult, KeysCommand};
use crate::keys;

pub fn run(cmd: &KeysCommand) -> CmdResult {
    match cmd {
        KeysCommand::Init { dir, boards } => {
            let made = keys::init(dir, boards)?;
            for f in &made.files {
                println!("wrote {}", f.display());
            }
            println!(
                "serve with: hopcap-collector serve --key {} --trusted {}",
                keys::collector_key_path(dir).display(),
                keys::trusted_path(dir).display()
            );
            for b in boards {
                board_hint(dir, b);
            }
        }
        KeysCommand::Add { dir, name, public } => {
            let public = public.as_deref().map(keys::parse_key).transpose()?;
            let made = keys::add(dir, name, public)?;
            for f in &made.files {
                println!("wrote {}", f.display());
            }
            if public.is_none() {
                board_hint(dir, name);
            }
        }
        KeysCommand::Revoke { dir, name } => {
            let key = keys::revoke(dir, name)?;
            println!(
                "revoked board {name:?} (key {}): refused from its next connection on; a live \
                 connection of it is cut within a second",
                keys::fingerprint(&key)
            );
        }
    }
    Ok(())
}

fn board_hint(dir: &std::path::Path, board: &str) {
    println!(
        "board {board}: copy {} to it (mode 0600), then: hopcap-agent --collector HOST:7878 --key FILE",
        keys::board_key_path(dir, board).display()
    );
}
