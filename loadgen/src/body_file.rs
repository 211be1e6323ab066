//! Reading a request body (or a mix file) from a file: a regular file of at most
//! [`MAX_BODY_BYTES`], so that `/dev/zero`, a FIFO or a huge file is refused with
//! a clear error instead of filling the memory or waiting forever.

use std::io::{self, Read};
use std::path::Path;

/// The largest request body read from a file (16 MiB).
pub const MAX_BODY_BYTES: u64 = 16 << 20;

/// The bytes of the regular file at `path`, at most [`MAX_BODY_BYTES`] of them.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_BODY_BYTES) as usize);
    // The file may grow while it is read: read one byte past the limit to tell.
    file.take(MAX_BODY_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BODY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than {MAX_BODY_BYTES} bytes (16 MiB)"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_up_to_the_limit_only() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").unwrap();
        assert_eq!(read(&small).unwrap(), b"abc");
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_BODY_BYTES + 1).unwrap();
        let e = read(&big).unwrap_err();
        assert!(e.to_string().contains("16 MiB"), "{e}");
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        assert!(read(dir.path()).is_err(), "a directory");
        assert!(read(&dir.path().join("missing")).is_err());
    }
}
