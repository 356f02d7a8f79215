//! A classic-BPF assembler with symbolic labels. Conditional jumps reach at most 255
//! instructions ahead; a jump that lands farther is rewritten as `jxx 0,1; ja T; ja F`
//! (`ja` takes a 32-bit offset), repeating the layout until no jump is too far.

use super::bpf::{BpfInsn, CompileError, Program, BPF_MAXINSNS};
use super::op;
use heapless::Vec;

/// A position in the program, resolved when the program is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(u16);

#[derive(Clone, Copy, Debug)]
enum Op {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ja(Label),
}

const UNPLACED: u16 = u16::MAX;
const FAR_T: u8 = 1;
const FAR_F: u8 = 2;

#[derive(Debug)]
pub(crate) struct Asm {
    ops: Vec<Op, BPF_MAXINSNS>,
    /// Op index of each label, or UNPLACED.
    labels: Vec<u16, BPF_MAXINSNS>,
    /// Set when ops or labels ran out of room; reported by `finish`.
    full: bool,
}

impl Asm {
    pub fn new() -> Asm {
        Asm {
            ops: Vec::new(),
            labels: Vec::new(),
            full: false,
        }
    }

    pub fn label(&mut self) -> Label {
        let id = self.labels.len() as u16; // capacity 4096 < u16::MAX
        if self.labels.push(UNPLACED).is_err() {
            self.full = true;
        }
        Label(id)
    }

    /// `N` new labels at once: `let [ok, bad] = a.labels();`.
    pub fn labels<const N: usize>(&mut self) -> [Label; N] {
        core::array::from_fn(|_| self.label())
    }

    /// Puts `l` before the next instruction emitted.
    pub fn place(&mut self, l: Label) {
        let here = self.ops.len() as u16;
        if let Some(slot) = self.labels.get_mut(usize::from(l.0)) {
            *slot = here;
        }
    }

    fn push(&mut self, op: Op) {
        if self.ops.push(op).is_err() {
            self.full = true;
        }
    }

    /// A non-jump instruction.
    pub fn stmt(&mut self, code: u16, k: u32) {
        self.push(Op::Stmt { code, k });
    }

    /// A conditional jump (`code` includes BPF_JMP, the test and BPF_K/BPF_X).
    pub fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.push(Op::Jump { code, k, jt, jf });
    }

    pub fn ja(&mut self, to: Label) {
        self.push(Op::Ja(to));
    }

    /// Lays the program out and writes the instructions.
    pub fn finish(&self) -> Result<Program, CompileError> {
        if self.full {
            return Err(CompileError::TooLong);
        }
        let n = self.ops.len();
        // Per op: FAR_T / FAR_F when that branch goes through a `ja` placed after the jump.
        let mut far: Vec<u8, BPF_MAXINSNS> = Vec::new();
        far.resize(n, 0).map_err(|_| CompileError::TooLong)?;
        // addr[i] = address of op i; addr[n] = program length.
        let mut addr: Vec<u32, { BPF_MAXINSNS + 1 }> = Vec::new();
        loop {
            addr.clear();
            let mut at = 0u32;
            for &bits in far.iter() {
                addr.push(at).map_err(|_| CompileError::TooLong)?;
                at += 1 + (bits & FAR_T != 0) as u32 + (bits & FAR_F != 0) as u32;
            }
            addr.push(at).map_err(|_| CompileError::TooLong)?;
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                let Op::Jump { jt, jf, .. } = op else {
                    continue;
                };
                let base = addr[i] + 1;
                for (label, bit) in [(jt, FAR_T), (jf, FAR_F)] {
                    let too_far = self
                        .target(&addr, *label)?
                        .checked_sub(base)
                        .is_none_or(|d| d > 255);
                    if far[i] & bit == 0 && too_far {
                        far[i] |= bit;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        if addr.last().is_none_or(|&len| len as usize > BPF_MAXINSNS) {
            return Err(CompileError::TooLong);
        }
        let mut out = Program::new();
        for (i, op) in self.ops.iter().enumerate() {
            let here = addr[i];
            let offset = |l: Label, from: u32| -> Result<u32, CompileError> {
                self.target(&addr, l)?
                    .checked_sub(from)
                    .ok_or(CompileError::Internal)
            };
            let short = |l: Label, from: u32| -> Result<u8, CompileError> {
                u8::try_from(offset(l, from)?).map_err(|_| CompileError::Internal)
            };
            let ja = |k: u32| BpfInsn {
                code: op::JMP | op::JA,
                jt: 0,
                jf: 0,
                k,
            };
            let mut emit = |insn: BpfInsn| out.push(insn).map_err(|_| CompileError::TooLong);
            match *op {
                Op::Stmt { code, k } => emit(BpfInsn {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                })?,
                Op::Ja(l) => emit(ja(offset(l, here + 1)?))?,
                // The far branches land on `ja`s right after the jump: T's first, then F's.
                Op::Jump { code, k, jt, jf } => match far[i] {
                    0 => emit(BpfInsn {
                        code,
                        jt: short(jt, here + 1)?,
                        jf: short(jf, here + 1)?,
                        k,
                    })?,
                    FAR_T => {
                        emit(BpfInsn {
                            code,
                            jt: 0,
                            jf: short(jf, here + 1)?,
                            k,
                        })?;
                        emit(ja(offset(jt, here + 2)?))?;
                    }
                    FAR_F => {
                        emit(BpfInsn {
                            code,
                            jt: short(jt, here + 1)?,
                            jf: 0,
                            k,
                        })?;
                        emit(ja(offset(jf, here + 2)?))?;
                    }
                    _ => {
                        emit(BpfInsn {
                            code,
                            jt: 0,
                            jf: 1,
                            k,
                        })?;
                        emit(ja(offset(jt, here + 2)?))?;
                        emit(ja(offset(jf, here + 3)?))?;
                    }
                },
            }
        }
        Ok(out)
    }

    /// Address of a label; it must be placed at an instruction (not past the end).
    fn target(&self, addr: &[u32], l: Label) -> Result<u32, CompileError> {
        let at = *self
            .labels
            .get(usize::from(l.0))
            .ok_or(CompileError::Internal)?;
        if usize::from(at) >= self.ops.len() {
            return Err(CompileError::Internal);
        }
        addr.get(usize::from(at))
            .copied()
            .ok_or(CompileError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::bpf_vm::{self, Ancillary};

    #[test]
    fn short_jumps_resolve_to_offsets() {
        let mut a = Asm::new();
        let (yes, no) = (a.label(), a.label());
        a.stmt(op::LD | op::H | op::ABS, 12);
        a.jump(op::JMP | op::JEQ | op::K, 0x800, yes, no);
        a.place(yes);
        a.stmt(op::RET | op::K, 96);
        a.place(no);
        a.stmt(op::RET | op::K, 0);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!((p[1].jt, p[1].jf), (0, 1));
    }

    /// A jump over more than 255 instructions must still land where the label is.
    #[test]
    fn far_jumps_are_expanded_and_still_correct() {
        // The far branch as the jump's true side, then as its false side (JEQ vs a JGT
        // that is false for 7), then both far.
        for (code, far_when_true, both) in [
            (op::JEQ, true, false),
            (op::JGT, false, false),
            (op::JEQ, true, true),
        ] {
            for filler in [250usize, 254, 255, 256, 300, 1000] {
                let mut a = Asm::new();
                let (far, near, far2) = (a.label(), a.label(), a.label());
                a.stmt(op::LD | op::B | op::ABS, 0);
                let (t, f) = if far_when_true {
                    (far, near)
                } else {
                    (near, far)
                };
                let t = if both { far2 } else { t };
                let f = if both { far } else { f };
                a.jump(op::JMP | code | op::K, 7, t, f);
                a.place(near);
                for _ in 0..filler {
                    a.stmt(op::ALU | op::ADD | op::K, 1);
                }
                a.stmt(op::RET | op::A, 0);
                a.place(far);
                a.stmt(op::RET | op::K, 1234);
                a.place(far2);
                a.stmt(op::RET | op::K, 4321);
                let p = a.finish().unwrap();
                bpf_vm::validate(&p).unwrap();
                let anc = Ancillary::default();
                let run = |byte: u8| bpf_vm::run(&p, &[byte], &anc);
                let case = (code, far_when_true, both, filler);
                if both {
                    assert_eq!((run(7), run(8)), (4321, 1234), "{case:?}");
                } else if far_when_true {
                    assert_eq!((run(7), run(8)), (1234, 8 + filler as u32), "{case:?}");
                } else {
                    assert_eq!(
                        (run(7), run(8)),
                        (1234, 8 + filler as u32),
                        "{case:?}: 7 > 7 is false"
                    );
                }
                // Offsets: `far` is filler + 1 ahead, `far2` filler + 2 (plus any expansion).
                let extra = p.len() - (filler + 5);
                let want = match (both, filler) {
                    (true, 254..) => 2,
                    (false, 255..) => 1,
                    _ => 0,
                };
                assert_eq!(extra, want, "{case:?}");
            }
        }
    }

    #[test]
    fn too_long_and_backward_jumps_are_errors() {
        let mut a = Asm::new();
        for _ in 0..BPF_MAXINSNS {
            a.stmt(op::RET | op::K, 0);
        }
        a.stmt(op::RET | op::K, 0);
        assert_eq!(a.finish(), Err(CompileError::TooLong));
        let mut b = Asm::new();
        let back = b.label();
        b.place(back);
        b.stmt(op::LD | op::B | op::ABS, 0);
        b.jump(op::JMP | op::JEQ | op::K, 0, back, back);
        assert_eq!(b.finish(), Err(CompileError::Internal));
    }
}
