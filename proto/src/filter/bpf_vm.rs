//! A small classic-BPF interpreter and the kernel's acceptance checks, to test programs
//! in-process. It follows Linux's semantics for socket filters: a load past the end of the
//! packet, or a division by zero, ends the program with 0 (drop); ancillary loads
//! (`SKF_AD_OFF + n`) read the skb metadata given in [`Ancillary`].

use super::bpf::{BpfInsn, BPF_MAXINSNS};
use super::op::*;

/// The skb metadata ancillary loads see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// skb->protocol (the EtherType, host order).
    pub protocol: u16,
    pub pkttype: u8,
    pub ifindex: u32,
    /// The device's ARPHRD_* type.
    pub hatype: u16,
    /// A VLAN tag the NIC or kernel removed from the frame (the whole TCI).
    pub vlan_tci: Option<u16>,
}

impl Ancillary {
    /// An Ethernet device (ARPHRD_ETHER) with this ifindex, no stripped tag.
    pub fn ethernet(ifindex: u32) -> Ancillary {
        Ancillary {
            hatype: 1,
            ifindex,
            ..Ancillary::default()
        }
    }
}

/// Why the kernel would refuse a program (SO_ATTACH_FILTER returns EINVAL), and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub pc: usize,
    pub reason: RejectReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Empty or longer than BPF_MAXINSNS.
    Length,
    UnknownOpcode,
    /// Division/modulo by constant 0, or a shift by 32 or more.
    BadConstant,
    /// Scratch memory index >= 16.
    BadMemIndex,
    JumpOutOfRange,
    /// An ancillary offset this interpreter (or the kernel) does not know.
    UnknownAncillary,
    /// The last instruction is not `ret`.
    NoFinalReturn,
    /// A scratch word may be read before any store on some path.
    UninitMemory,
}

fn is_jump(code: u16) -> bool {
    code & 0x07 == JMP
}

fn opcode_known(code: u16) -> bool {
    const ALU_OPS: [u16; 10] = [ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH];
    match code & 0x07 {
        ALU => {
            code == ALU | NEG
                || ALU_OPS
                    .iter()
                    .any(|&o| code == ALU | o | K || code == ALU | o | X)
        }
        JMP => {
            code == JMP | JA
                || [JEQ, JGT, JGE, JSET]
                    .iter()
                    .any(|&o| code == JMP | o | K || code == JMP | o | X)
        }
        LD => {
            [W, H, B]
                .iter()
                .any(|&s| code == LD | s | ABS || code == LD | s | IND)
                || code == LD | W | LEN
                || code == LD | IMM
                || code == LD | MEM
        }
        LDX => {
            code == LDX | IMM || code == LDX | MEM || code == LDX | W | LEN || code == LDX | B | MSH
        }
        ST => code == ST,
        STX => code == STX,
        RET => code == RET | K || code == RET | A,
        _ => code == MISC | TAX || code == MISC | TXA,
    }
}

fn ancillary_known(k: u32) -> bool {
    [
        SKF_AD_PROTOCOL,
        SKF_AD_PKTTYPE,
        SKF_AD_IFINDEX,
        SKF_AD_HATYPE,
        SKF_AD_VLAN_TAG,
        SKF_AD_VLAN_TAG_PRESENT,
    ]
    .iter()
    .any(|&a| k == SKF_AD_OFF.wrapping_add(a))
}

/// The checks of Linux's bpf_check_classic(), including its scratch-memory dataflow.
pub fn validate(prog: &[BpfInsn]) -> Result<(), Rejected> {
    let len = prog.len();
    let reject = |pc: usize, reason| Err(Rejected { pc, reason });
    if len == 0 || len > BPF_MAXINSNS {
        return reject(0, RejectReason::Length);
    }
    for (pc, insn) in prog.iter().enumerate() {
        let code = insn.code;
        if !opcode_known(code) {
            return reject(pc, RejectReason::UnknownOpcode);
        }
        let alu_op = code & 0xf0;
        let div_by_zero = (alu_op == DIV || alu_op == MOD) && insn.k == 0;
        let shift_too_far = (alu_op == LSH || alu_op == RSH) && insn.k >= 32;
        if code & 0x07 == ALU && code & X == 0 && (div_by_zero || shift_too_far) {
            return reject(pc, RejectReason::BadConstant);
        }
        let mem = matches!(code, c if c == LD | MEM || c == LDX | MEM || c == ST || c == STX);
        if mem && insn.k >= MEMWORDS {
            return reject(pc, RejectReason::BadMemIndex);
        }
        if code & 0x07 == LD
            && code & 0xe0 == ABS
            && insn.k >= SKF_AD_OFF
            && !ancillary_known(insn.k)
        {
            return reject(pc, RejectReason::UnknownAncillary);
        }
        if is_jump(code) {
            let rest = len - pc - 1;
            let in_range = if code == JMP | JA {
                (insn.k as usize) < rest
            } else {
                usize::from(insn.jt) < rest && usize::from(insn.jf) < rest
            };
            if !in_range {
                return reject(pc, RejectReason::JumpOutOfRange);
            }
        }
    }
    if !matches!(prog.last().map(|i| i.code), Some(c) if c == RET | K || c == RET | A) {
        return reject(len - 1, RejectReason::NoFinalReturn);
    }
    check_memory(prog)
}

/// Every scratch load must follow a store on every path (bit i = M[i] written).
fn check_memory(prog: &[BpfInsn]) -> Result<(), Rejected> {
    let mut masks = [u16::MAX; BPF_MAXINSNS];
    let mut valid: u16 = 0;
    for (pc, insn) in prog.iter().enumerate() {
        valid &= masks[pc];
        let bit = 1u16 << (insn.k & 0xf);
        let code = insn.code;
        if code == ST || code == STX {
            valid |= bit;
        } else if code == LD | MEM || code == LDX | MEM {
            if valid & bit == 0 {
                return Err(Rejected {
                    pc,
                    reason: RejectReason::UninitMemory,
                });
            }
        } else if code == JMP | JA {
            masks[pc + 1 + insn.k as usize] &= valid;
            valid = u16::MAX;
        } else if is_jump(code) {
            masks[pc + 1 + usize::from(insn.jt)] &= valid;
            masks[pc + 1 + usize::from(insn.jf)] &= valid;
            valid = u16::MAX;
        }
    }
    Ok(())
}

fn load(packet: &[u8], offset: u64, size: u16) -> Option<u32> {
    let n = match size {
        W => 4,
        H => 2,
        _ => 1,
    };
    let start = usize::try_from(offset).ok()?;
    let bytes = packet.get(start..start.checked_add(n)?)?;
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

fn ancillary(anc: &Ancillary, k: u32) -> u32 {
    match k.wrapping_sub(SKF_AD_OFF) {
        SKF_AD_PROTOCOL => u32::from(anc.protocol),
        SKF_AD_PKTTYPE => u32::from(anc.pkttype),
        SKF_AD_IFINDEX => anc.ifindex,
        SKF_AD_HATYPE => u32::from(anc.hatype),
        SKF_AD_VLAN_TAG => u32::from(anc.vlan_tci.unwrap_or(0)),
        SKF_AD_VLAN_TAG_PRESENT => u32::from(anc.vlan_tci.is_some()),
        _ => 0,
    }
}

/// Why a run ended early; the kernel returns 0 (drop) in these cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// A packet load past the end of the frame.
    OutOfBounds {
        pc: usize,
    },
    DivideByZero {
        pc: usize,
    },
    /// Ran off the end or hit an unknown opcode (impossible after `validate`).
    BadProgram {
        pc: usize,
    },
}

/// Runs a program (which should pass [`validate`]) on one frame; returns the accept length,
/// 0 meaning drop. Anything the kernel would abort on returns 0 too.
pub fn run(prog: &[BpfInsn], packet: &[u8], anc: &Ancillary) -> u32 {
    run_checked(prog, packet, anc).unwrap_or(0)
}

/// Like [`run`], but tells a trap apart from a program's own `ret #0`.
pub fn run_checked(prog: &[BpfInsn], packet: &[u8], anc: &Ancillary) -> Result<u32, Trap> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0usize;
    // Jumps only go forward, so pc strictly increases and the loop ends.
    while let Some(insn) = prog.get(pc) {
        pc += 1;
        let (code, k) = (insn.code, insn.k);
        match code & 0x07 {
            LD | LDX => {
                let mode = code & 0xe0;
                let size = code & 0x18;
                let value = match mode {
                    IMM => Some(k),
                    LEN => Some(packet.len() as u32),
                    MEM => Some(mem[(k & 0xf) as usize]),
                    ABS if k >= SKF_AD_OFF => Some(ancillary(anc, k)),
                    ABS => load(packet, u64::from(k), size),
                    IND => load(packet, u64::from(x) + u64::from(k), size),
                    MSH => load(packet, u64::from(k), B).map(|b| (b & 0xf) << 2),
                    _ => return Err(Trap::BadProgram { pc: pc - 1 }),
                };
                let Some(v) = value else {
                    return Err(Trap::OutOfBounds { pc: pc - 1 });
                };
                if code & 0x07 == LD {
                    a = v
                } else {
                    x = v
                }
            }
            ST => mem[(k & 0xf) as usize] = a,
            STX => mem[(k & 0xf) as usize] = x,
            ALU => {
                let operand = if code & X != 0 { x } else { k };
                a = match code & 0xf0 {
                    ADD => a.wrapping_add(operand),
                    SUB => a.wrapping_sub(operand),
                    MUL => a.wrapping_mul(operand),
                    DIV | MOD if operand == 0 => return Err(Trap::DivideByZero { pc: pc - 1 }),
                    DIV => a / operand,
                    MOD => a % operand,
                    OR => a | operand,
                    AND => a & operand,
                    XOR => a ^ operand,
                    LSH => a.checked_shl(operand).unwrap_or(0),
                    RSH => a.checked_shr(operand).unwrap_or(0),
                    NEG => a.wrapping_neg(),
                    _ => return Err(Trap::BadProgram { pc: pc - 1 }),
                };
            }
            JMP => {
                let operand = if code & X != 0 { x } else { k };
                let skip = match code & 0xf0 {
                    JA => k as usize,
                    test => {
                        let taken = match test {
                            JEQ => a == operand,
                            JGT => a > operand,
                            JGE => a >= operand,
                            _ => a & operand != 0,
                        };
                        usize::from(if taken { insn.jt } else { insn.jf })
                    }
                };
                pc += skip;
            }
            RET => return Ok(if code & A != 0 { a } else { k }),
            _ => {
                if code & TXA != 0 {
                    a = x
                } else {
                    x = a
                }
            }
        }
    }
    Err(Trap::BadProgram { pc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> BpfInsn {
        BpfInsn { code, jt, jf, k }
    }

    /// `tcpdump -d ip` on Ethernet.
    fn ip_only() -> [BpfInsn; 4] {
        [
            insn(LD | H | ABS, 0, 0, 12),
            insn(JMP | JEQ | K, 0, 1, 0x800),
            insn(RET | K, 0, 0, 262144),
            insn(RET | K, 0, 0, 0),
        ]
    }

    #[test]
    fn runs_a_tcpdump_program() {
        let p = ip_only();
        validate(&p).unwrap();
        let mut frame = [0u8; 20];
        frame[12] = 0x08;
        let anc = Ancillary::ethernet(1);
        assert_eq!(run(&p, &frame, &anc), 262144);
        frame[13] = 0x06;
        assert_eq!(run(&p, &frame, &anc), 0);
        assert_eq!(run(&p, &frame[..13], &anc), 0, "a load past the end drops");
    }

    #[test]
    fn msh_ind_mem_and_ancillary() {
        let p = [
            insn(LDX | B | MSH, 0, 0, 0), // X = 4 * (P[0] & 0xf)
            insn(LD | H | IND, 0, 0, 2),  // A = P[X+2 .. X+4]
            insn(ST, 0, 0, 3),            // M[3] = A
            insn(LD | W | ABS, 0, 0, SKF_AD_OFF + SKF_AD_VLAN_TAG), // A = tci
            insn(ALU | AND | K, 0, 0, 0xfff),
            insn(MISC | TAX, 0, 0, 0),
            insn(LD | MEM, 0, 0, 3),
            insn(ALU | ADD | X, 0, 0, 0),
            insn(RET | A, 0, 0, 0),
        ];
        validate(&p).unwrap();
        let mut frame = [0u8; 12];
        frame[0] = 0x42; // 8 bytes of header
        frame[10] = 0x01;
        frame[11] = 0x02;
        let anc = Ancillary {
            vlan_tci: Some(0x2005),
            ..Ancillary::ethernet(3)
        };
        assert_eq!(run(&p, &frame, &anc), 0x0102 + 5);
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        use RejectReason::*;
        let ret0 = insn(RET | K, 0, 0, 0);
        let cases: [(&[BpfInsn], Rejected); 7] = [
            (
                &[],
                Rejected {
                    pc: 0,
                    reason: Length,
                },
            ),
            (
                &[insn(LD | MEM, 0, 0, 2), ret0],
                Rejected {
                    pc: 0,
                    reason: UninitMemory,
                },
            ),
            (
                &[insn(ALU | DIV | K, 0, 0, 0), ret0],
                Rejected {
                    pc: 0,
                    reason: BadConstant,
                },
            ),
            (
                &[insn(JMP | JEQ | K, 0, 1, 0), ret0],
                Rejected {
                    pc: 0,
                    reason: JumpOutOfRange,
                },
            ),
            (
                &[insn(LD | IMM, 0, 0, 0)],
                Rejected {
                    pc: 0,
                    reason: NoFinalReturn,
                },
            ),
            (
                &[insn(LD | W | ABS, 0, 0, SKF_AD_OFF + 56), ret0],
                Rejected {
                    pc: 0,
                    reason: UnknownAncillary,
                },
            ),
            (
                &[insn(0xffff, 0, 0, 0), ret0],
                Rejected {
                    pc: 0,
                    reason: UnknownOpcode,
                },
            ),
        ];
        for (prog, want) in cases {
            assert_eq!(validate(prog), Err(want), "{prog:?}");
        }
    }

    #[test]
    fn memory_must_be_written_on_every_path() {
        // Stores M[0] only when P[0] == 1, then reads it on both paths.
        let p = [
            insn(LD | B | ABS, 0, 0, 0),
            insn(JMP | JEQ | K, 0, 1, 1),
            insn(ST, 0, 0, 0),
            insn(LD | MEM, 0, 0, 0),
            insn(RET | A, 0, 0, 0),
        ];
        assert_eq!(
            validate(&p),
            Err(Rejected {
                pc: 3,
                reason: RejectReason::UninitMemory
            })
        );
        let mut fixed = p;
        fixed[0] = insn(ST, 0, 0, 0); // store first, then the test reads A = 0
        validate(&fixed).unwrap();
    }
}
