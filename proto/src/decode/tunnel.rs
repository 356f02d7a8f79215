//! Steps for tunnel headers: VXLAN, Geneve, GTP-U, GRE (and ERSPAN inside it). Each
//! pushes its own layer, then hands over to the inner packet.

use super::{halt, Next, Step, Walk};
use crate::layer::LayerKind;
use crate::types::EtherType;
use crate::wire::cisco::{self, ShimKind};
use crate::wire::{check_len, erspan, geneve, gre, gtpu, vxlan};

impl Walk<'_, '_, '_> {
    pub(super) fn vxlan(&mut self) -> Step {
        let vxlan = vxlan::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Vxlan))?;
        self.push(vxlan.layer())?;
        self.advance(vxlan.header_len());
        Ok(Next::Ethernet)
    }

    pub(super) fn geneve(&mut self) -> Step {
        let bytes = self.bytes();
        let geneve = geneve::Header::new_checked(bytes).map_err(halt(LayerKind::Geneve))?;
        self.push(geneve.layer())?;
        check_len(bytes, geneve.header_len()).map_err(halt(LayerKind::Geneve))?;
        self.advance(geneve.header_len());
        self.by_ethertype(geneve.protocol())
    }

    /// GTP-U: a G-PDU carries a user IP packet; other messages (echo, end marker...) end
    /// the walk with their body as payload.
    pub(super) fn gtpu(&mut self) -> Step {
        let start = self.off;
        let gtp = gtpu::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Gtpu))?;
        self.push(gtp.layer())?;
        let header_len = gtp.header_len().map_err(halt(LayerKind::Gtpu))?;
        self.limit(
            start,
            gtpu::MIN_HEADER_LEN + usize::from(gtp.payload_len()),
            start + header_len,
        );
        self.advance(header_len);
        let user_packet = gtp.version() == 1 && gtp.is_gtp() && gtp.msg_type() == gtpu::MSG_GPDU;
        if user_packet && !self.bytes().is_empty() {
            Ok(Next::Ip { v6: false })
        } else {
            Ok(Next::Done)
        }
    }

    pub(super) fn gre(&mut self) -> Step {
        let gre = gre::Header::new_checked(self.bytes()).map_err(halt(LayerKind::Gre))?;
        self.push(gre.layer())?;
        let header_len = gre.header_len().map_err(halt(LayerKind::Gre))?;
        self.advance(header_len);
        match gre.protocol() {
            gre::PROTO_PPP => Ok(Next::Ppp),
            // ERSPAN type I has no header of its own and no GRE sequence number.
            EtherType::ERSPAN2 if gre.seq_present() => Ok(Next::Erspan { type3: false }),
            EtherType::ERSPAN2 => Ok(Next::Ethernet),
            EtherType::ERSPAN3 => Ok(Next::Erspan { type3: true }),
            cisco::METADATA => Ok(Next::Shim(ShimKind::MetaDataInGre)),
            other => self.by_ethertype(other),
        }
    }

    pub(super) fn erspan(&mut self, type3: bool) -> Step {
        let erspan =
            erspan::Header::new_checked(self.bytes(), type3).map_err(halt(LayerKind::Other))?;
        self.advance(erspan.header_len());
        Ok(Next::Ethernet)
    }
}
