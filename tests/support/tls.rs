//! Real certificates for TLS tests, made fresh in a temporary folder: a CA, a server
//! certificate for 127.0.0.1 it signed, a client certificate it signed, and a second CA
//! with a client certificate of its own that the server must not trust.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// The files of one test's certificates.
pub struct Certs {
    _dir: tempfile::TempDir,
    /// The CA the server and the good client trust.
    pub ca: PathBuf,
    /// The server's certificate (127.0.0.1, localhost) and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate the CA signed.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// Another CA: the server must refuse what it signed, and a client trusting only it
    /// must refuse the server.
    pub rogue_ca: PathBuf,
    /// A client certificate the rogue CA signed.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

fn authority(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty names are valid");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("a key is generated");
    let cert = params.self_signed(&key).expect("the CA signs itself");
    (Issuer::new(params, key), cert.pem())
}

fn leaf(names: &[&str], issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = CertificateParams::new(names).expect("names are valid");
    let key = KeyPair::generate().expect("a key is generated");
    let cert = params.signed_by(&key, issuer).expect("the CA signs it");
    (cert.pem(), key.serialize_pem())
}

impl Certs {
    /// Makes every certificate and writes the PEM files.
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("PEM file written");
            path
        };
        let (ca, ca_pem) = authority("tessera test CA");
        let (rogue, rogue_pem) = authority("someone else's CA");
        let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], &ca);
        let (client_cert, client_key) = leaf(&["client"], &ca);
        let (rogue_cert, rogue_key) = leaf(&["intruder"], &rogue);
        Certs {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            rogue_ca: write("rogue-ca.pem", &rogue_pem),
            rogue_cert: write("rogue.pem", &rogue_cert),
            rogue_key: write("rogue.key", &rogue_key),
            _dir: dir,
        }
    }

    /// The server flags for TLS with these certificates.
    pub fn server_flags(&self) -> Vec<String> {
        let path = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
        vec![
            "--tls-cert-file".into(),
            path(&self.server_cert),
            "--tls-key-file".into(),
            path(&self.server_key),
        ]
    }
}
