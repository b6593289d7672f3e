//! Hex for record data, by table (the `hex` crate's encoder goes a `char` at a time, which
//! was a quarter of a batch call's time).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Each byte's value as a hex digit, 0xff for what is not one.
const VALUES: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The bytes of `text` (hex, either case); `None` if it is not hex of whole bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() / 2);
    let mut bad = 0u8;
    for pair in t.chunks_exact(2) {
        let (hi, lo) = (VALUES[pair[0] as usize], VALUES[pair[1] as usize]);
        bad |= hi | lo;
        out.push(hi << 4 | (lo & 15));
    }
    // A digit's value is below 16; 0xff marks anything else.
    (bad < 16).then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_agrees_with_the_hex_crate() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::encode(&all), hex::encode(&all));
        assert_eq!(super::decode(&hex::encode_upper(&all)).unwrap(), all);
        assert_eq!(super::decode("").unwrap(), b"");
        assert!(super::decode("abc").is_none());
        assert!(super::decode("zz").is_none());
        assert!(super::decode("0g").is_none());
    }
}
