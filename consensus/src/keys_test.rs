//! The verification rule is one function of the bytes: every signature gets the same verdict
//! alone and in any batch layout, including the signatures a Byzantine client crafts to split
//! nodes (small-torsion R or key, non-canonical s or R encodings, small-order keys).

use super::*;
use crate::hostile;

/// One signature case: what a node is asked to check, and the ZIP-215 verdict.
#[derive(Clone)]
struct Case {
    name: &'static str,
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    valid: bool,
}

fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |name, key_bytes: [u8; 32], message: Vec<u8>, signature, valid| {
        let key = PublicKey::from_bytes(key_bytes).expect("a crafted key that decodes");
        cases.push(Case { name, key, message, signature, valid });
    };
    for round in 0..14 {
        let signer = SigningKey::from_seed(std::array::from_fn(|_| rng.u8(..)));
        let public = signer.public_key().to_bytes();
        let message: Vec<u8> = (0..rng.usize(0..80)).map(|_| rng.u8(..)).collect();
        let signature = signer.sign(&message);
        push("valid", public, message.clone(), signature, true);
        push("non-canonical s", public, message.clone(), hostile::with_non_canonical_s(signature), false);
        let mut wrong = message.clone();
        wrong.push(1);
        push("wrong message", public, wrong, signature, false);
        let torsion = 1 + round % 7;
        let (key, torsioned) = hostile::sign_torsioned(&signer, &message, torsion, 0);
        push("torsioned R", key, message.clone(), torsioned, true);
        let (key, torsioned) = hostile::sign_torsioned(&signer, &message, 0, torsion);
        push("torsioned key", key, message.clone(), torsioned, true);
        let (key, torsioned) = hostile::sign_torsioned(&signer, &message, torsion, 7 - torsion % 7);
        push("torsioned R and key", key, message.clone(), torsioned, true);
        let non_canonical = hostile::sign_with_non_canonical_r(&signer, &message, (round % 2) as u8, round % 4 < 2);
        push("non-canonical R", public, message, non_canonical, true);
    }
    cases
}

#[test]
fn small_order_and_non_canonical_keys_never_decode() {
    for bytes in hostile::small_order_points() {
        assert_eq!(PublicKey::from_bytes(bytes), Err(KeyError::WeakPublicKey), "{}", crate::hex::encode(bytes));
    }
    // y = 0 + p and y = 1 + p: small-order points, written non-canonically.
    for low in [0xed, 0xee] {
        let mut bytes = [0xff; 32];
        bytes[0] = low;
        bytes[31] = 0x7f;
        assert!(PublicKey::from_bytes(bytes).is_err());
    }
    // The identity with the sign bit set ("x = -0"), another non-canonical small-order encoding.
    let mut negative_identity = [0u8; 32];
    negative_identity[0] = 1;
    negative_identity[31] = 0x80;
    assert!(PublicKey::from_bytes(negative_identity).is_err());
}

#[test]
fn crafted_signatures_get_the_cofactored_verdict() {
    let mut rng = fastrand::Rng::with_seed(215);
    for case in cases(&mut rng) {
        let expected = if case.valid { Ok(()) } else { Err(KeyError::BadSignature) };
        assert_eq!(case.key.verify(&case.message, &case.signature), expected, "{}", case.name);
    }
}

#[test]
fn batch_verdict_equals_single_verdict_in_every_layout() {
    let mut rng = fastrand::Rng::with_seed(8032);
    let pool = cases(&mut rng);
    let single: Vec<bool> = pool.iter().map(|case| case.key.verify(&case.message, &case.signature).is_ok()).collect();
    for layout in 0..600 {
        let size = rng.usize(1..=48);
        // Two layouts in three hold only valid signatures (the batch must pass), the rest mixed.
        let candidates: Vec<usize> =
            if layout % 3 == 0 { (0..pool.len()).collect() } else { (0..pool.len()).filter(|&i| single[i]).collect() };
        let chosen: Vec<usize> = (0..size).map(|_| candidates[rng.usize(..candidates.len())]).collect();
        let messages: Vec<&[u8]> = chosen.iter().map(|&i| pool[i].message.as_slice()).collect();
        let signatures: Vec<Signature> = chosen.iter().map(|&i| pool[i].signature).collect();
        let keys: Vec<PublicKey> = chosen.iter().map(|&i| pool[i].key).collect();
        let expected = match chosen.iter().position(|&i| !single[i]) {
            None => Ok(()),
            Some(index) => Err(BatchError { index }),
        };
        let names: Vec<&str> = chosen.iter().map(|&i| pool[i].name).collect();
        assert_eq!(verify_batch(&messages, &signatures, &keys), expected, "layout {layout}: {names:?}");
    }
}
