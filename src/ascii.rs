//! Byte-class checks over outside input, in one pass without an early exit, so that the
//! compiler can check 16 or 32 bytes an instruction: the header reader and the package
//! id check run them on every request.

/// Whether `keep` holds for every byte of `bytes`. No early exit: the time depends on the
/// length only, and the loop vectorizes.
#[inline]
pub(crate) fn all_bytes(bytes: &[u8], keep: impl Fn(u8) -> bool) -> bool {
    bytes.iter().fold(true, |all, &b| all & keep(b))
}

/// Whether every byte is printable ASCII (`!` to `~`): a package id's alphabet.
#[inline]
pub(crate) fn all_graphic(bytes: &[u8]) -> bool {
    all_bytes(bytes, |b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_asked() {
        let cases: [(&[u8], bool); 7] = [
            (b"", true),
            (b"Contoso.Service", true),
            (b"!~", true),
            (b"a b", false),
            (b"a\x7f", false),
            (b"\x00abc", false),
            (b"abc\xc3\xa9", false),
        ];
        for (bytes, graphic) in cases {
            assert_eq!(all_graphic(bytes), graphic, "{bytes:?}");
        }
        // Past a vector's width, the byte at the end still counts.
        let mut long = vec![b'a'; 100];
        assert!(all_graphic(&long));
        long[99] = b' ';
        assert!(!all_graphic(&long));
        assert!(all_bytes(&long, |b| b == b'a' || b == b' '));
    }
}
