//! The SIP UDP socket handed to rsipstack: every datagram is read whole (a 64 KiB buffer holds
//! the largest UDP payload), and one that does not fit the stack's own receive buffer
//! ([`STACK_UDP_BUF_BYTES`], rsipstack's `MAX_UDP_BUF_SIZE`) is never passed on cut short: a
//! request gets 513 Message Too Large (RFC 3261 §21.5.14) and anything else is dropped, both
//! logged. Before, a larger datagram was truncated to 8 KiB and answered as if whole.

use rsipstack::sip::{Header, Method, SipMessage};
use std::net::SocketAddr;

/// Bytes read per datagram: more than the largest UDP payload (65,507 bytes over IPv4), so no
/// datagram is ever cut by the read.
pub const UDP_READ_BUF_BYTES: usize = 64 * 1024;
/// The receive buffer rsipstack gives the socket (its `MAX_UDP_BUF_SIZE`): larger messages
/// cannot reach the stack whole.
pub const STACK_UDP_BUF_BYTES: usize = 8192;

/// What to do with one datagram that does not fit the stack's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oversized {
    /// Send this 513 response back to the source.
    Reply(Vec<u8>),
    /// Drop it (a response, an ACK, or bytes that are not SIP).
    Drop,
}

/// The answer to a datagram too large for the stack: 513 for a request (with the request's Via,
/// From, To, Call-ID and CSeq, RFC 3261 §8.2.6.2), nothing for the rest.
pub fn oversized(datagram: &[u8]) -> Oversized {
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(datagram) else { return Oversized::Drop };
    if req.method == Method::Ack {
        return Oversized::Drop;
    }
    let mut text = String::from("SIP/2.0 513 Message Too Large\r\n");
    let mut has = [false; 5];
    for h in req.headers.iter() {
        let i = match h {
            Header::Via(_) => 0,
            Header::From(_) => 1,
            Header::To(_) => 2,
            Header::CallId(_) => 3,
            Header::CSeq(_) => 4,
            _ => continue,
        };
        has[i] = true;
        text.push_str(&h.to_string());
        text.push_str("\r\n");
    }
    if has.iter().any(|h| !h) {
        return Oversized::Drop;
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Oversized::Reply(text.into_bytes())
}

/// The SIP UDP socket (see the module docs).
pub struct WholeDatagramSocket {
    socket: tokio::net::UdpSocket,
    buf: tokio::sync::Mutex<Vec<u8>>,
}

impl WholeDatagramSocket {
    pub fn new(socket: tokio::net::UdpSocket) -> WholeDatagramSocket {
        WholeDatagramSocket { socket, buf: tokio::sync::Mutex::new(vec![0; UDP_READ_BUF_BYTES]) }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for WholeDatagramSocket {
    async fn recv_from(&self, out: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // One reader (rsipstack's serve loop): the lock is never contended.
        let mut buf = self.buf.lock().await;
        loop {
            let (len, from) = self.socket.recv_from(&mut buf).await?;
            if len <= out.len() {
                out[..len].copy_from_slice(&buf[..len]);
                return Ok((len, from));
            }
            match oversized(&buf[..len]) {
                Oversized::Reply(resp) => {
                    tracing::warn!(source = %from, len, limit = out.len(), "SIP message too large: 513");
                    if let Err(e) = self.socket.send_to(&resp, from).await {
                        tracing::debug!(error = %e, "513 not sent");
                    }
                }
                Oversized::Drop => tracing::warn!(source = %from, len, limit = out.len(), "SIP datagram too large: dropped"),
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_request_gets_513_with_its_transaction_headers() {
        let body = "a".repeat(10_000);
        let req = format!(
            "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let Oversized::Reply(resp) = oversized(req.as_bytes()) else { panic!("no 513") };
        let text = String::from_utf8(resp).expect("utf8");
        assert!(text.starts_with("SIP/2.0 513 Message Too Large\r\n"), "{text}");
        for h in ["Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1", "Call-ID: c1", "CSeq: 1 MESSAGE", "Content-Length: 0"] {
            assert!(text.contains(h), "{h} missing in {text}");
        }
        assert!(matches!(SipMessage::try_from(text.as_str()), Ok(SipMessage::Response(_))));
        assert_eq!(oversized(&[0xff; 9000]), Oversized::Drop);
    }
}
