//! gRPC's length-prefixed framing, pure: a 1-byte compressed flag, a 4-byte big-endian length,
//! the message. Lengths are checked before anything is allocated for the message.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes before each message: the compressed flag and the 4-byte length.
pub const HEADER_LEN: usize = 5;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The compressed flag is set; this server accepts identity encoding only.
    Compressed,
    /// The announced length exceeds the limit.
    TooLarge {
        /// Bytes announced.
        len: u64,
        /// Bytes allowed.
        max: usize,
    },
    /// The body ended inside the header or the message.
    Truncated,
    /// Bytes after the one message of a unary call.
    Trailing,
    /// A flag byte other than 0 or 1.
    BadFlag(u8),
}

/// Checks a frame header; returns the message length.
///
/// # Errors
/// [`FrameError`] for a compressed message, a bad flag or a length over `max`.
pub fn check_header(header: &[u8], max: usize) -> Result<usize, FrameError> {
    let (&[flag, a, b, c, d], _) = header
        .split_first_chunk::<5>()
        .ok_or(FrameError::Truncated)?;
    match flag {
        0 => {}
        1 => return Err(FrameError::Compressed),
        other => return Err(FrameError::BadFlag(other)),
    }
    let len = u32::from_be_bytes([a, b, c, d]);
    usize::try_from(len)
        .ok()
        .filter(|&n| n <= max)
        .ok_or(FrameError::TooLarge {
            len: u64::from(len),
            max,
        })
}

/// The single message of a unary request body.
///
/// # Errors
/// [`FrameError`] when the body is not exactly one acceptable frame.
pub fn decode_unary(body: &[u8], max: usize) -> Result<&[u8], FrameError> {
    let len = check_header(body, max)?;
    let rest = body.get(HEADER_LEN..).ok_or(FrameError::Truncated)?;
    match rest.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated),
        std::cmp::Ordering::Greater => Err(FrameError::Trailing),
        std::cmp::Ordering::Equal => Ok(rest),
    }
}

/// Encodes a protobuf message straight into its frame: one buffer, no intermediate copy.
pub trait Framed {
    /// The message with its 5-byte frame header in front.
    fn framed(&self) -> Bytes;
}

impl<M: draftstore_proto::prost::Message> Framed for M {
    fn framed(&self) -> Bytes {
        let len = self.encoded_len();
        let mut out = BytesMut::with_capacity(HEADER_LEN + len);
        out.put_u8(0);
        out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        // Encoding into a buffer with enough capacity cannot fail.
        let _ = self.encode(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Frames raw bytes by hand: the oracle `Framed` and `decode_unary` are checked against.
    fn encode(message: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + message.len());
        out.put_u8(0);
        out.put_u32(u32::try_from(message.len()).unwrap());
        out.put_slice(message);
        out.freeze()
    }

    #[test]
    fn framed_messages_equal_encoded_then_framed() {
        let m = draftstore_proto::grpc::health::v1::HealthCheckRequest {
            service: "x".into(),
        };
        assert_eq!(
            m.framed(),
            encode(&draftstore_proto::prost::Message::encode_to_vec(&m))
        );
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_named() {
        let framed = encode(b"hello");
        assert_eq!(decode_unary(&framed, 100), Ok(&b"hello"[..]));
        assert_eq!(decode_unary(&framed[..3], 100), Err(FrameError::Truncated));
        assert_eq!(decode_unary(&framed[..7], 100), Err(FrameError::Truncated));
        assert_eq!(
            decode_unary(&[&framed[..], b"x"].concat(), 100),
            Err(FrameError::Trailing)
        );
        assert_eq!(
            decode_unary(&framed, 4),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        assert_eq!(
            check_header(&[1, 0, 0, 0, 0], 10),
            Err(FrameError::Compressed)
        );
        assert_eq!(
            check_header(&[7, 0, 0, 0, 0], 10),
            Err(FrameError::BadFlag(7))
        );
        assert_eq!(
            check_header(&[0, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1 << 20
            })
        );
        assert_eq!(decode_unary(&encode(b""), 0), Ok(&b""[..]));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..64), max in 0_usize..64) {
            let _ = decode_unary(&body, max);
        }
    }
}
