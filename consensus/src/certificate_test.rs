use super::*;

struct Fixture {
    chain: ChainId,
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    digest: Digest,
}

fn fixture(n: u8) -> Fixture {
    let keys: Vec<SigningKey> = (0..n).map(|i| SigningKey::from_seed([i + 1; 32])).collect();
    let set = ValidatorSet::new(keys.iter().map(SigningKey::public_key).collect()).expect("set");
    Fixture { chain: ChainId::new("stele-test").expect("chain"), keys, set, digest: Digest::of(b"block") }
}

impl Fixture {
    fn certificate(&self, signers: &[u32]) -> CommitCertificate {
        let signers: Vec<(u32, &SigningKey)> = signers.iter().map(|&i| (i, &self.keys[i as usize])).collect();
        CommitCertificate::sign(&self.chain, 5, 2, self.digest, &signers)
    }

    fn verify(&self, certificate: &CommitCertificate) -> Result<(), CertificateError> {
        certificate.verify(&self.chain, &self.set, 5, &self.digest)
    }
}

#[test]
fn a_quorum_verifies_and_more_is_fine() {
    let fixture = fixture(4);
    assert_eq!(fixture.verify(&fixture.certificate(&[0, 1, 2])), Ok(()));
    assert_eq!(fixture.verify(&fixture.certificate(&[3, 1, 0, 2])), Ok(()));
}

#[test]
fn fewer_than_a_quorum_is_rejected() {
    let fixture = fixture(4);
    assert_eq!(
        fixture.verify(&fixture.certificate(&[0, 1])),
        Err(CertificateError::InsufficientSignatures { found: 2, needed: 3 })
    );
}

#[test]
fn duplicates_do_not_count_twice() {
    let fixture = fixture(4);
    assert_eq!(fixture.verify(&fixture.certificate(&[0, 1, 1])), Err(CertificateError::Duplicate { validator: 1 }));
}

#[test]
fn non_members_are_rejected() {
    let fixture = fixture(4);
    let mut certificate = fixture.certificate(&[0, 1, 2]);
    certificate.signatures[2].validator = 4;
    assert_eq!(fixture.verify(&certificate), Err(CertificateError::NotMember { validator: 4, members: 4 }));

    // A signature by a key outside the set, placed under a member's index, does not verify.
    let outsider = SigningKey::from_seed([99; 32]);
    let outsider_certificate = CommitCertificate::sign(&fixture.chain, 5, 2, fixture.digest, &[(1, &outsider)]);
    let mut certificate = fixture.certificate(&[0, 2, 3]);
    certificate.signatures.push(outsider_certificate.signatures[0]);
    certificate.signatures.remove(1);
    assert_eq!(fixture.verify(&certificate), Err(CertificateError::BadSignature { validator: 1 }));
}

#[test]
fn wrong_chain_height_digest_are_rejected() {
    let fixture = fixture(4);
    let certificate = fixture.certificate(&[0, 1, 2]);
    let other_chain = ChainId::new("other").expect("chain");
    assert!(matches!(
        certificate.verify(&other_chain, &fixture.set, 5, &fixture.digest),
        Err(CertificateError::WrongChain { .. })
    ));
    assert_eq!(
        certificate.verify(&fixture.chain, &fixture.set, 6, &fixture.digest),
        Err(CertificateError::WrongHeight { expected: 6, found: 5 })
    );
    assert!(matches!(
        certificate.verify(&fixture.chain, &fixture.set, 5, &Digest::ZERO),
        Err(CertificateError::WrongDigest { .. })
    ));

    // Relabelling the certificate does not help: the signatures cover the original fields.
    let mut relabelled = certificate.clone();
    relabelled.chain_id = other_chain.clone();
    assert!(matches!(
        relabelled.verify(&other_chain, &fixture.set, 5, &fixture.digest),
        Err(CertificateError::BadSignature { .. })
    ));
    let mut moved = certificate.clone();
    moved.view = 3;
    assert!(matches!(fixture.verify(&moved), Err(CertificateError::BadSignature { .. })));
}

#[test]
fn any_flipped_signature_bit_is_rejected() {
    let fixture = fixture(7);
    let certificate = fixture.certificate(&[0, 1, 2, 3, 4]);
    for signer in 0..certificate.signatures.len() {
        for byte in [0usize, 31, 32, 63] {
            let mut tampered = certificate.clone();
            tampered.signatures[signer].signature.0[byte] ^= 0x01;
            assert_eq!(
                fixture.verify(&tampered),
                Err(CertificateError::BadSignature { validator: signer as u32 }),
                "signer {signer}, byte {byte}"
            );
        }
    }
}

#[test]
fn a_prepare_signature_is_not_a_commit_signature() {
    let fixture = fixture(4);
    let prepare = Vote { kind: VoteKind::Prepare, height: 5, view: 2, digest: fixture.digest };
    let bytes = prepare.signing_bytes(&fixture.chain);
    let signatures =
        (0..3).map(|i| VoteSignature { validator: i, signature: fixture.keys[i as usize].sign(&bytes) }).collect();
    let certificate =
        CommitCertificate { chain_id: fixture.chain.clone(), height: 5, view: 2, digest: fixture.digest, signatures };
    assert!(matches!(fixture.verify(&certificate), Err(CertificateError::BadSignature { .. })));
}

#[test]
fn golden_encoding() {
    let fixture = fixture(4);
    let certificate = fixture.certificate(&[0]);
    let bytes = borsh::to_vec(&certificate).expect("encode");
    // chain id (4 + 10) + height 8 + view 8 + digest 32 + vec length 4 + (index 4 + signature 64)
    assert_eq!(bytes.len(), 14 + 8 + 8 + 32 + 4 + 68);
    assert_eq!(hex::encode(&bytes[..14]), format!("0a000000{}", hex::encode("stele-test")));
    assert_eq!(&bytes[14..30], &[5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    // Ed25519 signing is deterministic, so the signature bytes are fixed too.
    assert_eq!(Digest::of(&bytes).to_string(), "0x94e7fe2bfd234ca0cedae7050dccf0b1ed804110b06df13853f56b31591ef793");
    let decoded: CommitCertificate = borsh::from_slice(&bytes).expect("decode");
    assert_eq!(decoded, certificate);
    assert_eq!(borsh::to_vec(&decoded).expect("encode"), bytes);
}
