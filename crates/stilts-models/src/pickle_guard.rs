//! A PyTorch `.bin` is a pickle, and a pickle can name any Python callable: `torch.load`
//! without `weights_only=True` calls it. stilts reads tensors with burn's pickle reader, which
//! runs nothing, but a file that names a callable outside the tensor-rebuilding set is not a
//! weights file and is refused before it is read, naming the callable (the check
//! `torch.load(weights_only=True)` makes, and Hugging Face's `picklescan`).
//!
//! The walk knows every pickle opcode (protocols 0 to 5) and reads only what their arguments
//! span, each length checked against the file; the module and name of `STACK_GLOBAL` are the
//! two strings pushed last (directly or from the memo), as `picklescan` resolves them.
//! Both layouts are scanned: the zip archive `torch.save` writes since 1.6 (every `*.pkl`
//! entry) and the legacy stream of pickles (magic, protocol, system info, the object, the
//! storage keys).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::ModelError;

/// Callables a state dict needs, as `module.name` (torch's own weights-only allowlist for
/// tensors, storages and dtypes; `_codecs.encode` is how protocol 2 writes bytes).
const ALLOWED: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch.serialization._get_layout",
    "torch.Size",
    "torch.device",
    "_codecs.encode",
    "builtins.bytearray",
    "builtins.set",
    "builtins.frozenset",
];

/// `torch.<X>Storage` and the dtypes (`torch.float32`, ...), also allowed.
fn allowed(global: &str) -> bool {
    if ALLOWED.contains(&global) {
        return true;
    }
    let Some(name) = global.strip_prefix("torch.") else {
        return false;
    };
    name.ends_with("Storage") && name.chars().all(char::is_alphanumeric)
        || matches!(
            name,
            "float32"
                | "float64"
                | "float16"
                | "bfloat16"
                | "int64"
                | "int32"
                | "int16"
                | "int8"
                | "uint8"
                | "bool"
                | "float"
                | "double"
                | "half"
                | "long"
                | "int"
                | "short"
                | "complex64"
                | "complex128"
                | "float8_e4m3fn"
                | "float8_e5m2"
        )
}

/// Refuses `path` when one of its pickles names a callable a weights file does not need, or
/// when a pickle cannot be walked.
pub fn check_weights_file(path: &Path) -> Result<(), ModelError> {
    let refuse = |message: String| ModelError::UnsafePickle {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    if magic[..n] == *b"PK\x03\x04" {
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| refuse(format!("not a readable zip archive: {e}")))?;
        let mut scanned = 0;
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| refuse(format!("zip entry {i}: {e}")))?;
            if !entry.name().ends_with(".pkl") {
                continue;
            }
            let name = entry.name().to_owned();
            let pickle =
                read_prefix(&mut entry, MAX_PICKLE).map_err(|e| refuse(format!("{name}: {e}")))?;
            walk(&pickle, 0).map_err(|e| refuse(format!("{name}: {e}")))?;
            scanned += 1;
        }
        if scanned == 0 {
            return Err(refuse("the archive holds no pickle (`data.pkl`)".into()));
        }
        return Ok(());
    }
    // The legacy stream: magic number, protocol, system info, the object, the storage keys,
    // then the raw storages (gigabytes for a large model, never read here). The pickles are read
    // from a prefix that grows only while they run past its end.
    let mut limit = FIRST_READ;
    loop {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let bytes = read_prefix(&mut file, limit).map_err(|e| refuse(e.to_string()))?;
        let walked = (0..5).try_fold(0, |at, _| walk(&bytes, at));
        match walked {
            Ok(_) => return Ok(()),
            Err(e) if e.starts_with(SHORT) && bytes.len() as u64 == limit && limit < MAX_PICKLE => {
                limit = (limit * 8).min(MAX_PICKLE);
            }
            Err(e) => return Err(refuse(e)),
        }
    }
}

/// What a legacy file's first read takes: its pickles usually end well inside it.
const FIRST_READ: u64 = 1 << 20;

/// The most pickle bytes read: a state dict's pickle is kilobytes to a few megabytes; the
/// tensors are stored beside it.
const MAX_PICKLE: u64 = 256 << 20;

fn read_prefix(r: &mut impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// How a walk that ran off the end of its bytes begins its error.
const SHORT: &str = "the pickle ends inside an opcode";

/// Walks one pickle from `start` to its STOP; returns the offset after it.
fn walk(data: &[u8], start: usize) -> Result<usize, String> {
    let mut r = Reader { data, at: start };
    let mut memo: HashMap<u64, Option<String>> = HashMap::new();
    let mut strings: Vec<String> = Vec::new();
    // What the previous opcode pushed, when a string (for PUT/MEMOIZE).
    let mut last: Option<String> = None;
    loop {
        let offset = r.at;
        let op = r.byte()?;
        let mut pushed: Option<String> = None;
        match op {
            b'.' => return Ok(r.at),
            // No argument.
            b'(' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}' | b'e'
            | b'l' | b']' | b'o' | b's' | b't' | b')' | b'u' | 0x81 | 0x85 | 0x86 | 0x87 | 0x88
            | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x97 | 0x98 => {}
            // A line argument.
            b'F' | b'I' | b'L' | b'P' => {
                r.line()?;
            }
            b'S' => pushed = Some(unquote(&r.line()?)),
            b'V' => pushed = Some(r.line()?),
            b'g' => {
                let key = parse_u64(&r.line()?)?;
                pushed = memo.get(&key).cloned().flatten();
            }
            b'p' => {
                let key = parse_u64(&r.line()?)?;
                memo.insert(key, last.clone());
            }
            // Fixed-size arguments.
            b'K' | 0x80 => r.skip(1)?,
            b'M' => r.skip(2)?,
            b'J' => r.skip(4)?,
            b'G' | 0x95 => r.skip(8)?,
            b'h' => {
                let key = u64::from(r.byte()?);
                pushed = memo.get(&key).cloned().flatten();
            }
            b'j' => {
                let key = u64::from(r.u32()?);
                pushed = memo.get(&key).cloned().flatten();
            }
            b'q' => {
                let key = u64::from(r.byte()?);
                memo.insert(key, last.clone());
            }
            b'r' => {
                let key = u64::from(r.u32()?);
                memo.insert(key, last.clone());
            }
            0x94 => {
                memo.insert(memo.len() as u64, last.clone());
            }
            // Length-prefixed data.
            0x8a | b'C' => {
                let n = usize::from(r.byte()?);
                r.skip(n)?;
            }
            b'U' | 0x8c => {
                let n = usize::from(r.byte()?);
                pushed = Some(r.text(n)?);
            }
            0x8b | b'B' => {
                let n = r.u32()? as usize;
                r.skip(n)?;
            }
            b'T' | b'X' => {
                let n = r.u32()? as usize;
                pushed = Some(r.text(n)?);
            }
            0x8d => {
                let n = r.u64()?;
                pushed = Some(r.text(usize::try_from(n).map_err(|_| r.short())?)?);
            }
            0x8e | 0x96 => {
                let n = r.u64()?;
                r.skip(usize::try_from(n).map_err(|_| r.short())?)?;
            }
            // A callable by name.
            b'c' | b'i' => {
                let module = r.line()?;
                let name = r.line()?;
                check_global(&format!("{module}.{name}"), offset)?;
            }
            0x93 => {
                let n = strings.len();
                if n < 2 {
                    return Err(format!(
                        "STACK_GLOBAL at byte {offset} without a module and a name before it"
                    ));
                }
                check_global(&format!("{}.{}", strings[n - 2], strings[n - 1]), offset)?;
            }
            0x82..=0x84 => {
                return Err(format!(
                    "byte {offset}: a callable from the copyreg extension registry (EXT{}), which a weights file never needs",
                    match op {
                        0x82 => 1,
                        0x83 => 2,
                        _ => 4,
                    }
                ));
            }
            other => {
                return Err(format!(
                    "byte {offset}: unknown pickle opcode 0x{other:02x}"
                ));
            }
        }
        if let Some(s) = &pushed {
            strings.push(s.clone());
        }
        last = pushed;
    }
}

fn check_global(global: &str, offset: usize) -> Result<(), String> {
    if allowed(global) {
        Ok(())
    } else {
        Err(format!(
            "it calls `{global}` (byte {offset}), which is not one of the tensor-rebuilding \
             functions a weights file needs: loaded by Python, it could run code. stilts refuses \
             it; convert a trusted copy to model.safetensors"
        ))
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '\'' || c == '"').to_owned()
}

fn parse_u64(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a memo index"))
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn short(&self) -> String {
        format!("{SHORT} at byte {}", self.at)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(self.short());
        };
        let slice = &self.data[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn text(&mut self, n: usize) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.short());
        };
        let line = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_outside_the_tensor_set_are_refused() {
        // protocol 0: c os\nsystem\n (S'echo pwned'\ntR.
        let evil = b"cos\nsystem\n(S'echo pwned'\ntR.";
        let e = walk(evil, 0).unwrap_err();
        assert!(e.contains("`os.system`"), "{e}");
        // protocol 4: STACK_GLOBAL over two memoized short strings.
        let evil4 = b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x8c\x011\x85R.";
        let e = walk(evil4, 0).unwrap_err();
        assert!(e.contains("`builtins.eval`"), "{e}");
        // The same names reached through the memo (BINGET).
        let memo = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93.";
        assert!(walk(memo, 0).unwrap_err().contains("`os.system`"));
        let ok = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.";
        assert_eq!(walk(ok, 0).unwrap(), ok.len());
    }

    #[test]
    fn a_legacy_pickle_longer_than_the_first_read_is_walked_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        let small = b"\x80\x02K\x01.";
        let mut object = b"\x80\x02B".to_vec();
        let n = (FIRST_READ as usize) * 2;
        object.extend_from_slice(&(n as u32).to_le_bytes());
        object.extend(std::iter::repeat_n(0u8, n));
        object.push(b'.');
        let mut file = Vec::new();
        for part in [&small[..], small, small, &object, small] {
            file.extend_from_slice(part);
        }
        std::fs::write(&path, &file).unwrap();
        check_weights_file(&path).unwrap();
        // The same stream with the object's pickle naming os.system past the first read.
        let evil = b"cos\nsystem\n(S'x'\ntR.";
        file.truncate(file.len() - small.len() - 1);
        file.push(b'0');
        file.extend_from_slice(evil);
        file.extend_from_slice(small);
        std::fs::write(&path, &file).unwrap();
        let e = check_weights_file(&path).unwrap_err().to_string();
        assert!(e.contains("`os.system`"), "{e}");
    }

    #[test]
    fn truncated_or_unknown_input_is_an_error_not_a_panic() {
        let ok = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.";
        for n in 0..ok.len() {
            assert!(walk(&ok[..n], 0).is_err(), "{n}");
        }
        assert!(
            walk(b"\xff.", 0)
                .unwrap_err()
                .contains("unknown pickle opcode")
        );
        // A length far past the end allocates nothing.
        assert!(walk(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", 0).is_err());
    }
}
