//! The built-in `amazon/amazon-ecs-sample` image: a tiny HTTP/1.1 server answering every GET
//! with an ECS sample page (our own words, same purpose as the public image's page), run as
//! `portico __sample-app` so a task is a real, separate process. Blocking std I/O and one
//! thread per connection keep it small (a few MiB resident); it logs one line per request to
//! stdout, as the image's httpd does, which is what `aws logs tail` shows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// The page, as the sample image serves it.
pub const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Amazon ECS Sample App</title>
<style>
body { margin: 0; background: #232f3e; color: #ffffff; font-family: sans-serif; text-align: center; }
main { margin-top: 80px; }
h1 { font-size: 2.4em; }
p { font-size: 1.2em; }
</style>
</head>
<body>
<main>
<h1>Amazon ECS Sample App</h1>
<h2>Congratulations!</h2>
<p>Your application is now running on a container in Amazon ECS.</p>
<p>Served by Portico's built-in amazon/amazon-ecs-sample image.</p>
</main>
</body>
</html>
"#;

/// Serves forever on `addr`; returns only when it cannot listen.
pub fn run(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("AH00558: httpd: listening on {}", listener.local_addr()?);
    println!("[mpm_event:notice] Amazon ECS sample app ready -- resuming normal operations");
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
    Ok(())
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "-".into());
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let request_line = request_line.trim_end().to_string();
        if request_line.is_empty() {
            continue;
        }
        let mut content_length = 0usize;
        let mut close = request_line.ends_with("HTTP/1.0");
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.eq_ignore_ascii_case("close");
                }
            }
        }
        if content_length > 0 {
            std::io::copy(
                &mut (&mut reader).take(content_length as u64),
                &mut std::io::sink(),
            )?;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let (status, body): (&str, &str) = match method {
            "GET" | "HEAD" => ("200 OK", PAGE),
            _ => ("405 Method Not Allowed", "Method Not Allowed\n"),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: {}\r\nServer: Apache/2.4 (portico sample)\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(body.as_bytes())?;
        }
        out.flush()?;
        println!(
            "{peer} - - \"{request_line}\" {} {}",
            &status[..3],
            body.len()
        );
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_with_keep_alive() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let _ = serve(s);
        });
        let mut c = TcpStream::connect(addr).unwrap();
        for _ in 0..2 {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut status = String::new();
            r.read_line(&mut status).unwrap();
            assert_eq!(status, "HTTP/1.1 200 OK\r\n");
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.strip_prefix("Content-Length: ") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            assert!(body.contains("<title>Amazon ECS Sample App</title>"));
            assert!(body.contains("Congratulations"));
        }
    }
}
