//! Zero-copy L4 relay (Linux): each direction moves bytes socket -> pipe -> socket with splice(2), so the relay
//! hands the kernel's pages on instead of copying them through user space twice. On loopback this is what
//! decides a single connection's throughput: the relay's thread is the pipeline's slowest stage.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes one splice call may move, and the pipe's capacity asked for (the kernel may give less).
const CHUNK: usize = 256 << 10;

/// A pipe whose both ends never block.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        // A larger pipe means fewer calls per byte; the default (64 KiB) still works if this is refused.
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
        Ok(Self { read, write })
    }
}

/// One pipe per direction of a connection.
pub struct Pipes {
    up: Pipe,
    down: Pipe,
}

impl Pipes {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            up: Pipe::new()?,
            down: Pipe::new()?,
        })
    }
}

/// Relays both directions until both ends closed (each end's EOF is passed on as a half-close); returns the
/// bytes moved each way (client to upstream, upstream to client). The first error ends both directions.
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    pipes: &Pipes,
) -> io::Result<(u64, u64)> {
    tokio::try_join!(
        one_way(client, upstream, &pipes.up),
        one_way(upstream, client, &pipes.down)
    )
}

async fn one_way(from: &TcpStream, to: &TcpStream, pipe: &Pipe) -> io::Result<u64> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut moved = 0u64;
    loop {
        // Fill the pipe from the socket (the pipe is empty here, so only the socket can make this wait).
        let n = when_ready(from, Interest::READABLE, || {
            splice(from.as_fd(), None, pipe.write.as_fd(), None, CHUNK, flags)
        })
        .await?;
        if n == 0 {
            // EOF: pass the half-close on; the other direction goes on until its own EOF.
            return match nix::sys::socket::shutdown(
                to.as_raw_fd(),
                nix::sys::socket::Shutdown::Write,
            ) {
                Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(moved),
                Err(e) => Err(e.into()),
            };
        }
        // Drain the pipe into the other socket.
        let mut left = n;
        while left > 0 {
            let w = when_ready(to, Interest::WRITABLE, || {
                splice(pipe.read.as_fd(), None, to.as_fd(), None, left, flags)
            })
            .await?;
            if w == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= w;
        }
        moved += n as u64;
    }
}

/// Runs `op`, a splice on `sock`, once `sock` is ready for `interest` and until it no longer would block.
async fn when_ready(
    sock: &TcpStream,
    interest: Interest,
    mut op: impl FnMut() -> nix::Result<usize>,
) -> io::Result<usize> {
    loop {
        sock.ready(interest).await?;
        match sock.try_io(interest, || op().map_err(io::Error::from)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// A client and a server joined by the relay; the server answers only after the client's EOF reached it,
    /// so both half-closes must be passed on, and the bytes must arrive intact and in order.
    #[tokio::test]
    async fn the_relay_carries_both_directions_intact_and_passes_each_half_close_on() {
        let request = pattern(5 << 20, 7);
        let answer = pattern(3 << 20, 99);
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server_addr = server.local_addr().expect("addr");
        let (expected_request, answer_sent) = (request.clone(), answer.clone());
        let server_task = tokio::spawn(async move {
            let (mut s, _) = server.accept().await.expect("accept");
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read to EOF");
            assert!(
                got == expected_request,
                "the server got other bytes than were sent"
            );
            s.write_all(&answer_sent).await.expect("answer");
        });
        let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front_addr = front.local_addr().expect("addr");
        let relay_task = tokio::spawn(async move {
            let (client, _) = front.accept().await.expect("accept");
            let upstream = TcpStream::connect(server_addr).await.expect("connect");
            let pipes = Pipes::new().expect("pipes");
            relay(&client, &upstream, &pipes).await
        });
        let mut c = TcpStream::connect(front_addr).await.expect("connect");
        let exchange = async {
            c.write_all(&request).await.expect("send");
            c.shutdown().await.expect("half-close");
            let mut got = Vec::new();
            c.read_to_end(&mut got)
                .await
                .expect("read the answer to EOF");
            got
        };
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
            .await
            .expect("the exchange ends (each EOF passed on)");
        assert!(
            got == answer,
            "the client got other bytes than the server sent"
        );
        server_task.await.expect("server");
        let moved = relay_task.await.expect("relay task").expect("relay");
        assert_eq!(moved, (request.len() as u64, answer.len() as u64));
    }
}
