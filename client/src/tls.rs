//! TLS for client connections: whom to trust, which certificate to show, and the handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS settings: the CA certificates a server must chain to, and optionally the client's
/// own certificate; cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsConfig {
    /// Trusts the CA certificates in the PEM file `ca`, and shows the certificate chain
    /// and key in `identity` (PEM files) when given.
    ///
    /// # Errors
    /// A file that cannot be read or holds no certificate or key, or a key that does not
    /// match its certificate.
    pub fn from_pem_files(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<TlsConfig, TlsError> {
        let bad = |path: &Path, error: &dyn std::fmt::Display| {
            TlsError(format!("{}: {error}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots.add(cert).map_err(|error| bad(ca, &error))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError(error.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let chain = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|error| bad(key, &error))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsError(format!("client certificate: {error}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConfig {
            config: Arc::new(config),
            server_name: None,
        })
    }

    /// Checks the server's certificate against `name` instead of the host connected to.
    pub fn with_server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// Runs the handshake over `stream`, checking the server's certificate names `host`
    /// (or the configured server name).
    ///
    /// # Errors
    /// The handshake failed, or the name is not a valid server name.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string()).map_err(|error| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("server name {name:?}: {error}"),
            )
        })?;
        TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError(format!("{}: {error}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// The host part of `host:port` (brackets dropped from an IPv6 literal).
pub(crate) fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}
