//! The post-build pass that shortens wasm-bindgen's long internal import and
//! export names (`__wbindgen_malloc`, `__wbg___wbindgen_throw_4c88d8bf…`,
//! the `./tallymark_bg.js` module, …) to `_0`, `_1`, … in both the `.wasm`
//! and its JS glue. Each name is stored once in the wasm and repeated in the
//! glue; only names wasm-bindgen owns are touched, never our exports.
//!
//! Hand-written (a few dozen lines) rather than a wasm rewriting crate: it
//! only edits the import and export sections and copies every other section
//! byte for byte.

use anyhow::{Context, Result, bail};

/// Whether `name` is wasm-bindgen's, not one of the SDK's own exports.
fn is_internal(name: &str) -> bool {
    name.starts_with("__wbg")
        || name.starts_with("__wbindgen")
        || name.starts_with("__externref")
        || name == "__instance_terminated"
        || name == "__abort_handler"
        || name.ends_with("_bg.js")
}

/// Renames wasm-bindgen's names in `wasm` and `glue`; returns both rewritten.
pub fn shorten(wasm: &[u8], glue: &str) -> Result<(Vec<u8>, String)> {
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut rename = |name: String| -> String {
        if !is_internal(&name) {
            return name;
        }
        if let Some((_, short)) = renames.iter().find(|(old, _)| *old == name) {
            return short.clone();
        }
        let short = format!("_{}", renames.len());
        renames.push((name, short.clone()));
        short
    };
    if wasm.get(..8) != Some(b"\0asm\x01\0\0\0".as_slice()) {
        bail!("not a wasm module");
    }
    let mut out = wasm[..8].to_vec();
    let mut r = Reader {
        bytes: wasm,
        pos: 8,
    };
    while r.pos < wasm.len() {
        let id = r.byte()?;
        let size = r.leb()? as usize;
        let body = r.take(size)?;
        let body = match id {
            2 => imports(body, &mut rename)?,
            7 => exports(body, &mut rename)?,
            _ => body.to_vec(),
        };
        out.push(id);
        push_leb(&mut out, body.len() as u64);
        out.extend_from_slice(&body);
    }
    // Longest first, so that no name is replaced inside a longer one.
    renames.sort_by_key(|(old, _)| std::cmp::Reverse(old.len()));
    let mut glue = glue.to_string();
    for (old, short) in &renames {
        glue = glue.replace(old.as_str(), short);
    }
    Ok((out, glue))
}

fn imports(body: &[u8], rename: &mut impl FnMut(String) -> String) -> Result<Vec<u8>> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let mut out = Vec::new();
    let count = r.leb()?;
    push_leb(&mut out, count);
    for _ in 0..count {
        push_name(&mut out, &rename(r.name()?));
        push_name(&mut out, &rename(r.name()?));
        let start = r.pos;
        match r.byte()? {
            0 => {
                r.leb()?; // function type
            }
            1 => {
                r.byte()?; // table element type
                r.limits()?;
            }
            2 => r.limits()?,
            3 => {
                r.byte()?; // value type
                r.byte()?; // mutability
            }
            4 => {
                r.byte()?; // tag attribute
                r.leb()?;
            }
            kind => bail!("unknown import kind {kind}"),
        }
        out.extend_from_slice(&body[start..r.pos]);
    }
    Ok(out)
}

fn exports(body: &[u8], rename: &mut impl FnMut(String) -> String) -> Result<Vec<u8>> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let mut out = Vec::new();
    let count = r.leb()?;
    push_leb(&mut out, count);
    for _ in 0..count {
        push_name(&mut out, &rename(r.name()?));
        out.push(r.byte()?); // kind
        push_leb(&mut out, r.leb()?); // index
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let bytes = self
            .bytes
            .get(self.pos..self.pos + n)
            .context("wasm ends early")?;
        self.pos += n;
        Ok(bytes)
    }

    fn leb(&mut self) -> Result<u64> {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                bail!("bad LEB128");
            }
        }
    }

    fn name(&mut self) -> Result<String> {
        let len = self.leb()? as usize;
        Ok(String::from_utf8(self.take(len)?.to_vec())?)
    }

    /// Table or memory limits: flags, minimum, and a maximum if flag bit 0.
    fn limits(&mut self) -> Result<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

fn push_leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    push_leb(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![id];
        push_leb(&mut s, body.len() as u64);
        s.extend_from_slice(body);
        s
    }

    #[test]
    fn renames_only_wasm_bindgen_names_in_wasm_and_glue() {
        let mut imports = vec![1];
        push_name(&mut imports, "./x_bg.js");
        push_name(&mut imports, "__wbg_throw_0123456789abcdef");
        imports.extend_from_slice(&[0, 0]); // function, type 0
        let mut exports = vec![2];
        push_name(&mut exports, "start");
        exports.extend_from_slice(&[0, 1]);
        push_name(&mut exports, "__wbindgen_malloc");
        exports.extend_from_slice(&[0, 2]);
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend(section(2, &imports));
        wasm.extend(section(10, &[0]));
        wasm.extend(section(7, &exports));
        let glue =
            r#"{"./x_bg.js":{__wbg_throw_0123456789abcdef:f}}; w.start(); w.__wbindgen_malloc(1)"#;
        let (out, glue) = shorten(&wasm, glue).unwrap();
        assert_eq!(glue, r#"{"_0":{_1:f}}; w.start(); w._2(1)"#);
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        let mut imports = vec![1];
        push_name(&mut imports, "_0");
        push_name(&mut imports, "_1");
        imports.extend_from_slice(&[0, 0]);
        let mut exports = vec![2];
        push_name(&mut exports, "start");
        exports.extend_from_slice(&[0, 1]);
        push_name(&mut exports, "_2");
        exports.extend_from_slice(&[0, 2]);
        want.extend(section(2, &imports));
        want.extend(section(10, &[0]));
        want.extend(section(7, &exports));
        assert_eq!(out, want);
    }
}
