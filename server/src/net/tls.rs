//! TLS for client connections: the server's rustls setup from PEM files, and a transport
//! that can leave one shard's reactor for another's mid-connection (HELLO SHARD), its TLS
//! session and all.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsAuthClients};

/// The TLS setup `config` asks for: `None` without a certificate.
///
/// # Errors
/// A file that cannot be read or holds no usable certificate or key, or a certificate and
/// key that do not match.
pub fn server_config(config: &Config) -> io::Result<Option<Arc<ServerConfig>>> {
    if config.tls_cert_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let certs = read_certs(&config.tls_cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&config.tls_key_file).map_err(|error| {
        invalid(format!(
            "tls-key-file {}: {error}",
            config.tls_key_file.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(error.to_string()))?;
    let builder = if config.tls_ca_cert_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(&config.tls_ca_cert_file)? {
            roots
                .add(cert)
                .map_err(|error| invalid(format!("tls-ca-cert-file: {error}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = match config.tls_auth_clients {
            TlsAuthClients::Yes => verifier,
            TlsAuthClients::Optional => verifier.allow_unauthenticated(),
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|error| invalid(format!("tls-ca-cert-file: {error}")))?,
        )
    };
    let server = builder
        .with_single_cert(certs, key)
        .map_err(|error| invalid(format!("tls-cert-file and tls-key-file: {error}")))?;
    Ok(Some(Arc::new(server)))
}

fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: {error}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds no certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// A TCP socket registered with one shard's reactor, that can be parked to cross to
/// another shard's thread and registered there.
#[derive(Debug)]
pub struct ShardSocket {
    live: Option<TcpStream>,
    parked: Option<std::net::TcpStream>,
}

impl ShardSocket {
    fn new(stream: TcpStream) -> ShardSocket {
        ShardSocket {
            live: Some(stream),
            parked: None,
        }
    }

    fn park(&mut self) -> io::Result<()> {
        if let Some(live) = self.live.take() {
            self.parked = Some(live.into_std()?);
        }
        Ok(())
    }

    fn unpark(&mut self) -> io::Result<()> {
        if let Some(parked) = self.parked.take() {
            self.live = Some(TcpStream::from_std(parked)?);
        }
        Ok(())
    }

    fn live(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.live
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket is parked"))
    }
}

impl AsyncRead for ShardSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().live() {
            Ok(live) => live.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for ShardSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().live() {
            Ok(live) => live.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().live() {
            Ok(live) => live.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().live() {
            Ok(live) => live.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

/// A client connection's byte stream: plain TCP, or TLS over it.
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, its handshake done.
    Tls(Box<TlsStream<ShardSocket>>),
}

/// A transport between shards: no reactor holds it.
pub enum Detached {
    /// Plain TCP.
    Plain(std::net::TcpStream),
    /// TLS, the session's state kept.
    Tls(Box<TlsStream<ShardSocket>>),
}

impl Transport {
    /// Runs the TLS handshake over `stream`.
    ///
    /// # Errors
    /// The handshake failed: a client without TLS, a certificate refused.
    pub async fn accept_tls(config: Arc<ServerConfig>, stream: TcpStream) -> io::Result<Transport> {
        let tls = TlsAcceptor::from(config)
            .accept(ShardSocket::new(stream))
            .await?;
        Ok(Transport::Tls(Box::new(tls)))
    }

    /// Leaves this thread's reactor, to be attached on another shard's thread.
    ///
    /// # Errors
    /// The socket could not be deregistered.
    pub fn detach(self) -> io::Result<Detached> {
        Ok(match self {
            Transport::Plain(stream) => Detached::Plain(stream.into_std()?),
            Transport::Tls(mut tls) => {
                tls.get_mut().0.park()?;
                Detached::Tls(tls)
            }
        })
    }
}

impl Detached {
    /// Registers the socket with this thread's reactor.
    ///
    /// # Errors
    /// The socket could not be registered.
    pub fn attach(self) -> io::Result<Transport> {
        Ok(match self {
            Detached::Plain(stream) => Transport::Plain(TcpStream::from_std(stream)?),
            Detached::Tls(mut tls) => {
                tls.get_mut().0.unpark()?;
                Transport::Tls(tls)
            }
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
