//! CRC-32C arithmetic beyond the `crc32c` crate: the checksum of any byte range from the checksums of two
//! prefixes, in O(log n), so that a search through damaged bytes checks every candidate record in one pass
//! over the file (linear time) instead of one pass per candidate (quadratic).
//!
//! The checksum of `A || B` is `shift(crc(A), |B|) ^ crc(B)`, where `shift(c, n)` multiplies `c` by
//! `x^(8n)` modulo the polynomial (zlib's `crc32_combine`, whose pre- and post-conditioning cancel out).
//! So `crc(B) = crc(A || B) ^ shift(crc(A), |B|)`.

/// CRC-32C's polynomial, bit-reflected.
const POLY: u32 = 0x82F6_3B78;

/// `a * b` modulo the polynomial (reflected: bit 31 is x^0).
fn mul(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                return p;
            }
        }
        m >>= 1;
        if m == 0 {
            return p;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
}

/// `x^(2^k)` modulo the polynomial, for k in 0..64.
const fn powers() -> [u32; 64] {
    // `mul` again, as a const fn (loops only).
    const fn cmul(a: u32, mut b: u32) -> u32 {
        let mut m = 1u32 << 31;
        let mut p = 0u32;
        while m != 0 {
            if a & m != 0 {
                p ^= b;
            }
            m >>= 1;
            b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        }
        p
    }
    let mut table = [0u32; 64];
    let mut p = 1u32 << 30; // x^1
    let mut k = 0;
    while k < 64 {
        table[k] = p;
        p = cmul(p, p);
        k += 1;
    }
    table
}

static X2N: [u32; 64] = powers();

/// `crc` followed by `len` more bytes' worth of zeros in the register: `crc * x^(8 len)`.
pub(crate) fn shift(crc: u32, len: u64) -> u32 {
    // x^(8 len) = product of x^(2^k) over the set bits of 8 len; k starts at 3 for the factor 8.
    let mut op = 1u32 << 31; // x^0
    let mut n = len;
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            op = mul(X2N[k & 63], op);
        }
        n >>= 1;
        k += 1;
    }
    mul(op, crc)
}

/// The checksum of `B` from the checksums of `A` and of `A || B`, with `|B| = len`.
pub(crate) fn suffix(crc_a: u32, crc_ab: u32, len: u64) -> u32 {
    crc_ab ^ shift(crc_a, len)
}

/// The checksum of `A || B` from those of `A` and of `B`, with `|B| = len`.
pub(crate) fn concat(crc_a: u32, crc_b: u32, len: u64) -> u32 {
    shift(crc_a, len) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_and_suffix_agree_with_whole_checksums() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 7, 64, 1000, 4999, 5000] {
            let (a, b) = data.split_at(split);
            let (ca, cb, cab) = (crc32c::crc32c(a), crc32c::crc32c(b), crc32c::crc32c(&data));
            assert_eq!(concat(ca, cb, b.len() as u64), cab, "split {split}");
            assert_eq!(suffix(ca, cab, b.len() as u64), cb, "split {split}");
            assert_eq!(
                crc32c::crc32c_combine(ca, cb, b.len()),
                cab,
                "the crate agrees"
            );
        }
    }
}
