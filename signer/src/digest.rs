//! SHA-256 and HMAC-SHA256 on the hot path, over `sha2`'s block function
//! (`sha2::compress256`, which picks the CPU's SHA extensions when there are some).
//!
//! Why not `sha2::Sha256` and `hmac::Hmac` there: a presigned URL is ~30 small writes and two
//! short hashes, and the generic wrappers' buffering and state copies (an `Hmac` clone moves
//! ~200 bytes) cost as much as a third of the SHA-256 work. Here a running hash is 32 bytes of
//! state plus one 64-byte block, written into directly, and an HMAC keyed once is two 32-byte
//! states. Output is plain FIPS 180-4 SHA-256 and RFC 2104 HMAC (tested against `sha2`/`hmac`).

use crate::canonical::Sink;
use crate::encode::Hex32;
use crate::signing_key::{DerivedKey, HmacSha256, SecondCache};
use sha2::digest::generic_array::GenericArray;

/// SHA-256's state between blocks.
type State = [u32; 8];

/// FIPS 180-4 §5.3.3.
const IV: State = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

fn compress(state: &mut State, block: &[u8; 64]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

fn to_bytes(state: &State) -> [u8; 32] {
    let mut out = [0_u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// A running SHA-256: the state after the whole blocks so far and the partial block.
#[derive(Clone)]
pub(crate) struct Sha256Stream {
    state: State,
    block: [u8; 64],
    /// Bytes in `block`, 0..64.
    filled: usize,
    /// Bytes absorbed in all.
    total: u64,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Self::from_state(IV, 0)
    }
}

impl Sha256Stream {
    const fn from_state(state: State, total: u64) -> Self {
        Self {
            state,
            block: [0; 64],
            filled: 0,
            total,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.filled > 0 {
            let take = (64 - self.filled).min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(slot) = self.block.get_mut(self.filled..self.filled + take) {
                slot.copy_from_slice(head);
            }
            self.filled += take;
            data = rest;
            if self.filled < 64 {
                return;
            }
            compress(&mut self.state, &self.block);
            self.filled = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            if let Ok(block) = <&[u8; 64]>::try_from(block) {
                compress(&mut self.state, block);
            }
        }
        let rest = blocks.remainder();
        if let Some(slot) = self.block.get_mut(..rest.len()) {
            slot.copy_from_slice(rest);
        }
        self.filled = rest.len();
    }

    /// The digest (FIPS 180-4 padding: `0x80`, zeros, the length in bits).
    pub(crate) fn finalize(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        if let Some(tail) = self.block.get_mut(self.filled..) {
            tail.fill(0);
        }
        if let Some(b) = self.block.get_mut(self.filled) {
            *b = 0x80;
        }
        if self.filled >= 56 {
            compress(&mut self.state, &self.block);
            self.block = [0; 64];
        }
        if let Some(len) = self.block.get_mut(56..) {
            len.copy_from_slice(&bits.to_be_bytes());
        }
        compress(&mut self.state, &self.block);
        to_bytes(&self.state)
    }
}

impl Sink for Sha256Stream {
    fn put(&mut self, s: &str) {
        self.update(s.as_bytes());
    }

    fn put_hex(&mut self, hex: &Hex32) {
        self.update(hex.as_bytes());
    }
}

/// HMAC-SHA256 with its key absorbed once: the states after the `ipad` and `opad` blocks.
#[derive(Clone)]
pub(crate) struct KeyedMac {
    inner: State,
    outer: State,
}

impl KeyedMac {
    /// For a key of at most 64 bytes (a SigV4 signing key is 32).
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let pad = |byte: u8| {
            let mut block = [byte; 64];
            for (b, k) in block.iter_mut().zip(key) {
                *b ^= k;
            }
            let mut state = IV;
            compress(&mut state, &block);
            state
        };
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// The inner hash, ready to absorb the message.
    pub(crate) fn start(&self) -> Sha256Stream {
        Sha256Stream::from_state(self.inner, 64)
    }

    /// `HMAC(key, message)` from `inner`, the inner hash having absorbed the whole message.
    pub(crate) fn finish(&self, inner: Sha256Stream) -> [u8; 32] {
        let mut outer = Sha256Stream::from_state(self.outer, 64);
        outer.update(&inner.finalize());
        outer.finalize()
    }

    /// `HMAC(key, data)`.
    pub(crate) fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut inner = self.start();
        inner.update(data);
        self.finish(inner)
    }
}

/// Where a presign's two digests come from: the SHA-256 of the canonical request and the
/// HMAC of the string to sign. [`Own`] is this module (the signer's path); [`Library`] is
/// `sha2::Sha256` and `hmac::Hmac` (the benchmark's comparison, `Signer::presign_library_digest`).
/// Both give the same bytes.
pub(crate) trait Digests {
    /// A running SHA-256.
    type Hash: Sink + Default;
    /// The HMAC's inner state, keyed with the signing key.
    type Mac: Sink + Clone;
    fn finish_hash(hash: Self::Hash) -> [u8; 32];
    fn start_mac(key: &DerivedKey) -> Self::Mac;
    fn finish_mac(key: &DerivedKey, mac: Self::Mac) -> [u8; 32];
    /// This backend's per-second state in `cache`.
    fn second(cache: &mut SecondCache) -> &mut Option<([u8; 16], Self::Mac)>;
}

/// The signer's own digests (this module).
pub(crate) enum Own {}

impl Digests for Own {
    type Hash = Sha256Stream;
    type Mac = Sha256Stream;

    fn finish_hash(hash: Sha256Stream) -> [u8; 32] {
        hash.finalize()
    }

    fn start_mac(key: &DerivedKey) -> Sha256Stream {
        key.keyed.start()
    }

    fn finish_mac(key: &DerivedKey, mac: Sha256Stream) -> [u8; 32] {
        key.keyed.finish(mac)
    }

    fn second(cache: &mut SecondCache) -> &mut Option<([u8; 16], Sha256Stream)> {
        &mut cache.own
    }
}

/// `sha2::Sha256` and `hmac::Hmac<Sha256>`, the well-kept libraries.
pub(crate) enum Library {}

impl Digests for Library {
    type Hash = sha2::Sha256;
    type Mac = HmacSha256;

    fn finish_hash(hash: sha2::Sha256) -> [u8; 32] {
        sha2::Digest::finalize(hash).into()
    }

    fn start_mac(key: &DerivedKey) -> HmacSha256 {
        key.mac.clone()
    }

    fn finish_mac(_: &DerivedKey, mac: HmacSha256) -> [u8; 32] {
        hmac::Mac::finalize(mac).into_bytes().into()
    }

    fn second(cache: &mut SecondCache) -> &mut Option<([u8; 16], HmacSha256)> {
        &mut cache.library
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    #[test]
    fn equals_sha2_and_hmac_for_every_length_and_split() {
        let data: Vec<u8> = (0..300_u32).map(|i| (i * 7 + 3) as u8).collect();
        let key = [9_u8; 32];
        let keyed = KeyedMac::new(&key);
        for len in 0..data.len() {
            let msg = &data[..len];
            let want: [u8; 32] = Sha256::digest(msg).into();
            for split in [0, 1, len / 3, len / 2, len.saturating_sub(1), len] {
                let split = split.min(len);
                let mut s = Sha256Stream::default();
                s.update(&msg[..split]);
                s.update(&msg[split..]);
                assert_eq!(s.finalize(), want, "len {len} split {split}");
            }
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(msg);
            let want: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(keyed.mac(msg), want, "hmac len {len}");
        }
    }
}
