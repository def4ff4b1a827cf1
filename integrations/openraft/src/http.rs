//! A small HTTP/1.1 over tokio's `TcpStream`: enough for the example's Raft
//! RPCs and its key-value API, with keep-alive, and without the compile
//! time of a full HTTP stack. Requests and responses carry a
//! `Content-Length` body (no chunked encoding); bodies are JSON.

use std::io;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// The largest body accepted (a snapshot chunk, a batch of entries).
pub const MAX_BODY: usize = 64 << 20;

/// One request: method, path, body.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/raft/append`.
    pub path: String,
    /// The body.
    pub body: Vec<u8>,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads the header lines up to the blank one; returns the first line and
/// the `Content-Length`. `Ok(None)` at a clean end of stream.
async fn read_head(stream: &mut BufStream<TcpStream>) -> io::Result<Option<(String, usize)>> {
    let mut first = String::new();
    if stream.read_line(&mut first).await? == 0 {
        return Ok(None);
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(bad("connection closed inside a header"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value
                .trim()
                .parse()
                .map_err(|_| bad("bad Content-Length"))?;
            if length > MAX_BODY {
                return Err(bad("body too large"));
            }
        }
    }
    Ok(Some((first.trim_end().to_string(), length)))
}

async fn read_body(stream: &mut BufStream<TcpStream>, length: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads the next request of a connection; `Ok(None)` when the client is
/// done with it.
pub async fn read_request(stream: &mut BufStream<TcpStream>) -> io::Result<Option<Request>> {
    let Some((first, length)) = read_head(stream).await? else {
        return Ok(None);
    };
    let mut parts = first.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("bad request line: {first:?}")));
    };
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        body: read_body(stream, length).await?,
    }))
}

/// Writes a response with `status` and a JSON `body`.
pub async fn write_response(
    stream: &mut BufStream<TcpStream>,
    status: u16,
    body: &[u8],
) -> io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Error" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// A client of one server, keeping its idle connections for the next call.
#[derive(Debug)]
pub struct Client {
    addr: String,
    idle: Mutex<Vec<BufStream<TcpStream>>>,
}

impl Client {
    /// A client of the server at `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Client {
        Client {
            addr: addr.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// POSTs `body` to `path`; returns the status and the response body. A
    /// kept connection the server has closed meanwhile is retried once on a
    /// new one.
    pub async fn post(&self, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut stream) = kept
            && let Ok(response) = exchange(&mut stream, &self.addr, path, body).await
        {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stream);
            return Ok(response);
        }
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = BufStream::new(tcp);
        let response = exchange(&mut stream, &self.addr, path, body).await?;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
        Ok(response)
    }
}

async fn exchange(
    stream: &mut BufStream<TcpStream>,
    host: &str,
    path: &str,
    body: &[u8],
) -> io::Result<(u16, Vec<u8>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let Some((status_line, length)) = read_head(stream).await? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before a response",
        ));
    };
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line: {status_line:?}")))?;
    Ok((status, read_body(stream, length).await?))
}
