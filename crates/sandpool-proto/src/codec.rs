//! Length-prefixed MessagePack framing, shared by the agent (blocking IO) and the
//! host (which decodes frames it read asynchronously).

use serde::{de::DeserializeOwned, Serialize};
use std::io::{Read, Write};

/// Largest payload either side accepts. File transfers are chunked well below this.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("cannot encode frame: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("channel IO: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `value` as one complete frame (length prefix included).
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; 4];
    rmp_serde::encode::write_named(&mut buf, value)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Decodes a payload (without its length prefix).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    Ok(rmp_serde::from_slice(payload)?)
}

/// Reads one payload; `Ok(None)` on a clean end of stream between frames.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Writes one frame and flushes.
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T) -> Result<(), FrameError> {
    w.write_all(&encode_frame(value)?)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, Request};

    #[test]
    fn round_trip_through_a_byte_stream() {
        let req = Envelope {
            id: 7,
            body: Request::Execute {
                code: "1+1".into(),
                timeout_ms: 5000,
            },
        };
        let bytes = encode_frame(&req).unwrap();
        let mut cursor = std::io::Cursor::new(bytes);
        let payload = read_frame(&mut cursor).unwrap().unwrap();
        let back: Envelope<Request> = decode(&payload).unwrap();
        assert_eq!(back, req);
        assert!(read_frame(&mut cursor).unwrap().is_none());
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut cursor = std::io::Cursor::new(((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec());
        assert!(matches!(read_frame(&mut cursor), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn truncated_payload_is_an_error_not_a_clean_end() {
        let mut bytes = encode_frame(&Envelope {
            id: 1,
            body: Request::Health,
        })
        .unwrap();
        bytes.truncate(bytes.len() - 1);
        assert!(read_frame(&mut std::io::Cursor::new(bytes)).is_err());
    }

    #[test]
    fn stream_frames_round_trip() {
        let note = Envelope {
            id: crate::EVENT_ID,
            body: Request::StreamData {
                stream: 9,
                data: vec![0, 255, 7],
            },
        };
        assert!(note.body.is_notification());
        let back: Envelope<Request> = decode(&encode_frame(&note).unwrap()[4..]).unwrap();
        assert_eq!(back, note);
        let event = Envelope {
            id: crate::EVENT_ID,
            body: crate::Response::Event(crate::Event::StreamReset {
                stream: 9,
                message: "reset".into(),
            }),
        };
        let back: Envelope<crate::Response> = decode(&encode_frame(&event).unwrap()[4..]).unwrap();
        assert_eq!(back, event);
        assert!(!Request::Connect { port: 80 }.is_notification());
    }

    #[test]
    fn health_without_a_workload_field_still_decodes() {
        #[derive(serde::Serialize)]
        struct OldHealth {
            driver: crate::DriverState,
            uptime_ms: u64,
        }
        let bytes = encode_frame(&OldHealth {
            driver: crate::DriverState::Absent,
            uptime_ms: 5,
        })
        .unwrap();
        let h: crate::Health = decode(&bytes[4..]).unwrap();
        assert_eq!(h.workload, None);
    }

    #[test]
    fn garbage_payload_is_a_decode_error() {
        assert!(decode::<Envelope<Request>>(&[0xc1, 0x00]).is_err());
    }
}
