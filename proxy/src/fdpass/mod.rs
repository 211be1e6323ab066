//! A framed message channel over a unix stream socket that can carry file descriptors.
//!
//! Each message is a 4-byte big-endian length followed by that many bytes of JSON. A message
//! may carry fds (`SCM_RIGHTS`), sent with the same `sendmsg` as its first byte. The payload
//! names the fds (one address per fd), so the receiver never has to guess which socket is
//! which. Received fds are close-on-exec (`MSG_CMSG_CLOEXEC`). Every send and receive has
//! the channel's step timeout. The protocol on top (count first, one acknowledgement per
//! batch) lives in [`crate::control::protocol`].

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// Largest message accepted, in bytes.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Most fds carried by one message.
pub const MAX_FDS_PER_MESSAGE: usize = 16;

/// Errors of the framed channel.
#[derive(Debug, thiserror::Error)]
pub enum FdPassError {
    /// The peer did not answer within the step timeout.
    #[error("timed out after {0:?} waiting for the peer ({1})")]
    Timeout(Duration, &'static str),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// A socket operation failed.
    #[error("control socket I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A message could not be encoded or decoded.
    #[error("bad control message: {0}")]
    Json(#[from] serde_json::Error),
    /// A message is larger than [`MAX_MESSAGE`].
    #[error("control message of {0} bytes is too large")]
    TooLarge(usize),
    /// Too many fds in one message.
    #[error("{0} fds in one message (at most {MAX_FDS_PER_MESSAGE})")]
    TooManyFds(usize),
}

/// A framed message channel (one end).
#[derive(Debug)]
pub struct Channel {
    stream: UnixStream,
    step: Duration,
}

impl Channel {
    /// Wraps a connected stream; every operation times out after `step`.
    pub fn new(stream: UnixStream, step: Duration) -> Channel {
        Channel { stream, step }
    }

    /// The underlying stream (e.g. for `peer_cred`).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Changes the step timeout.
    pub fn set_step_timeout(&mut self, step: Duration) {
        self.step = step;
    }

    /// Sends one message without fds.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FdPassError> {
        let frame = encode(msg)?;
        let step = self.step;
        tokio::time::timeout(step, self.stream.write_all(&frame))
            .await
            .map_err(|_| FdPassError::Timeout(step, "send"))??;
        Ok(())
    }

    /// Receives one message; fds sent with it, if any, are closed.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FdPassError> {
        let (msg, _fds) = self.recv_with_fds(self.step).await?;
        Ok(msg)
    }

    /// Receives one message, waiting up to `wait` instead of the step timeout.
    pub async fn recv_within<T: DeserializeOwned>(
        &mut self,
        wait: Duration,
    ) -> Result<T, FdPassError> {
        let (msg, _fds) = self.recv_with_fds(wait).await?;
        Ok(msg)
    }

    /// Waits until the peer closes the connection (messages received meanwhile are dropped).
    pub async fn wait_closed(&mut self) {
        while self.recv_frame::<serde_json::Value>().await.is_ok() {}
    }

    /// Sends one message carrying `fds`.
    pub async fn send_with_fds<T: Serialize>(
        &mut self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), FdPassError> {
        if fds.len() > MAX_FDS_PER_MESSAGE {
            return Err(FdPassError::TooManyFds(fds.len()));
        }
        let frame = encode(msg)?;
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let step = self.step;
        let sock = self.stream.as_raw_fd();
        let first = async {
            self.stream
                .async_io(Interest::WRITABLE, || {
                    let iov = [IoSlice::new(&frame)];
                    let cmsgs = [ControlMessage::ScmRights(&raw)];
                    sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
                        .map_err(std::io::Error::from)
                })
                .await
        };
        let sent = tokio::time::timeout(step, first)
            .await
            .map_err(|_| FdPassError::Timeout(step, "send fds"))??;
        if sent < frame.len() {
            tokio::time::timeout(step, self.stream.write_all(&frame[sent..]))
                .await
                .map_err(|_| FdPassError::Timeout(step, "send"))??;
        }
        Ok(())
    }

    /// Receives one message and the fds that came with it, waiting up to `wait`.
    pub async fn recv_with_fds<T: DeserializeOwned>(
        &mut self,
        wait: Duration,
    ) -> Result<(T, Vec<OwnedFd>), FdPassError> {
        tokio::time::timeout(wait, self.recv_frame())
            .await
            .map_err(|_| FdPassError::Timeout(wait, "receive"))?
    }

    async fn recv_frame<T: DeserializeOwned>(&mut self) -> Result<(T, Vec<OwnedFd>), FdPassError> {
        let mut fds = Vec::new();
        let mut header = [0u8; 4];
        let mut got = 0;
        // The first bytes are read with recvmsg, which is where the fds arrive.
        while got < header.len() {
            let n = self.recvmsg_into(&mut header[got..], &mut fds).await?;
            if n == 0 {
                return Err(FdPassError::Closed);
            }
            got += n;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_MESSAGE {
            return Err(FdPassError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                FdPassError::Closed
            } else {
                FdPassError::Io(e)
            }
        })?;
        Ok((serde_json::from_slice(&body)?, fds))
    }

    async fn recvmsg_into(
        &mut self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> Result<usize, FdPassError> {
        let sock = self.stream.as_raw_fd();
        let (n, raw) = self
            .stream
            .async_io(Interest::READABLE, || {
                let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
                let mut iov = [IoSliceMut::new(buf)];
                let msg =
                    recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
                        .map_err(std::io::Error::from)?;
                let mut raw = Vec::new();
                for c in msg.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmRights(r) = c {
                        raw.extend(r);
                    }
                }
                Ok((msg.bytes, raw))
            })
            .await?;
        for fd in raw {
            #[allow(unsafe_code)]
            // SAFETY: `fd` was just installed in this process by the kernel (SCM_RIGHTS);
            // nothing else refers to it, so this OwnedFd is its only owner.
            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(n)
    }
}

fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FdPassError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_MESSAGE {
        return Err(FdPassError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn pair() -> (Channel, Channel) {
        let (a, b) = UnixStream::pair().unwrap();
        let t = reloadbench_model::test_timing::scaled_secs(10);
        (Channel::new(a, t), Channel::new(b, t))
    }

    #[tokio::test]
    async fn messages_and_fds_arrive_named() {
        let (mut a, mut b) = pair();
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let names = vec![l1.local_addr().unwrap(), l2.local_addr().unwrap()];
        a.send(&"hello").await.unwrap();
        a.send_with_fds(&names, &[l1.as_fd(), l2.as_fd()])
            .await
            .unwrap();
        let hello: String = b.recv().await.unwrap();
        assert_eq!(hello, "hello");
        let (got, fds): (Vec<std::net::SocketAddr>, _) = b
            .recv_with_fds(reloadbench_model::test_timing::scaled_secs(10))
            .await
            .unwrap();
        assert_eq!(got, names);
        assert_eq!(fds.len(), 2);
        let flags = nix::fcntl::fcntl(&fds[0], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "received fds are close-on-exec"
        );
        let l = std::net::TcpListener::from(fds.into_iter().nth(1).unwrap());
        assert_eq!(l.local_addr().unwrap(), names[1]);
    }

    // The paused clock: nothing is ever sent on this in-process pair, and the 50 ms step
    // timeout that runs out takes no real time.
    #[tokio::test(start_paused = true)]
    async fn closed_and_timeout_are_reported() {
        let (a, mut b) = pair();
        b.set_step_timeout(Duration::from_millis(50));
        assert!(matches!(
            b.recv::<String>().await,
            Err(FdPassError::Timeout(..))
        ));
        drop(a);
        assert!(matches!(b.recv::<String>().await, Err(FdPassError::Closed)));
    }
}
