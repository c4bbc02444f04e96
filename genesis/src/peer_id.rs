use consensus::PublicKey;

/// The libp2p peer id of an ed25519 node key, as base58 text (`12D3KooW...`).
///
/// libp2p encodes the key as protobuf `{ type: Ed25519 (1), data: 32 bytes }` and, being short,
/// wraps it in an identity multihash (code 0x00, length 36). Computed here so `genesis` needs
/// no libp2p; the node crate's tests check it against libp2p's own `PeerId`.
pub fn peer_id_of(node_key: &PublicKey) -> String {
    let mut bytes = Vec::with_capacity(38);
    bytes.extend_from_slice(&ED25519_PREFIX);
    bytes.extend_from_slice(node_key.as_ref());
    bs58::encode(bytes).into_string()
}

/// Identity multihash of 36 bytes holding protobuf `{ type: Ed25519, data: 32 bytes }`.
const ED25519_PREFIX: [u8; 6] = [0x00, 36, 0x08, 0x01, 0x12, 32];

/// The node key a peer id names, if it is the peer id of an ed25519 key ([`peer_id_of`]'s inverse).
pub(crate) fn node_key_of(peer_id: &str) -> Option<PublicKey> {
    let bytes = bs58::decode(peer_id).into_vec().ok()?;
    let key = bytes.strip_prefix(&ED25519_PREFIX[..])?;
    PublicKey::from_bytes(key.try_into().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_peer_ids_have_the_libp2p_shape() {
        let key = consensus::SigningKey::from_seed([3; 32]).public_key();
        let peer_id = peer_id_of(&key);
        assert!(peer_id.starts_with("12D3KooW"), "{peer_id}");
        assert_eq!(peer_id.len(), 52);
        let decoded = bs58::decode(&peer_id).into_vec().expect("base58");
        assert_eq!(&decoded[6..], key.as_ref());
        assert_eq!(node_key_of(&peer_id), Some(key));
        assert_eq!(node_key_of("12D3KooW"), None);
        assert_eq!(node_key_of("not base58: 0OIl"), None);
    }
}
