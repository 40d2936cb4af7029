//! gzip and brotli at their best levels: the SDK's pre-compressed files (the
//! collector serves them by `Accept-Encoding`) and the sizes `bench sdk`
//! prints are the same bytes.

use std::io::Write;

use anyhow::Result;

/// gzip -9.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// Brotli at quality 11, window 22 (what `brotli -q 11` does).
pub fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        enc.write_all(bytes)?;
        enc.flush()?;
    }
    Ok(out)
}
