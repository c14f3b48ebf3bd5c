//! Re-verify a released signature from what the log recorded: rebuild the message from the
//! pre-image with the signer's own decoders (`exclave_policies::classify`), check the duty and
//! payload hash the record names, then verify the signature against the public key.

use exclave_policies::{classify, payload_hash, Classification, Crypto, KeyType, VrfContext};
use exclave_protocol::{SignContext, VrfRequest, WireKeyType};
use exclave_signing_log::{unhex, LogLine};
use sp_core::{crypto::VrfPublic, ecdsa, ed25519, sr25519, Pair as _};

/// A check that is finished, or an ed25519 signature left for a batch ([`verify_batch`]).
pub enum Pending {
    /// Finished: `Ok(())` when it verifies, else why not.
    Done(Result<(), String>),
    /// Everything but the ed25519 equation is checked; verify the item (in a batch).
    Ed25519(ed25519_zebra::batch::Item),
}

const ED25519_FAILED: &str = "the ed25519 signature does not verify against the public key";

/// Check a record that released a signature. `Ok(())` when it verifies, else why not.
pub fn check(line: &LogLine) -> Result<(), String> {
    match check_deferred(line) {
        Pending::Done(r) => r,
        Pending::Ed25519(item) => item.verify_single().map_err(|_| ED25519_FAILED.to_string()),
    }
}

/// Verify ed25519 items together (about twice as fast as one by one); when the batch fails,
/// each is verified alone, so every bad signature is still named. Same rules as sp-core's
/// single verification (ed25519-zebra, ZIP-215).
pub fn verify_batch(items: Vec<ed25519_zebra::batch::Item>) -> Vec<Result<(), String>> {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for item in &items {
        batch.queue(item.clone());
    }
    if batch.verify(rand::rngs::OsRng).is_ok() {
        return items.iter().map(|_| Ok(())).collect();
    }
    items.into_iter().map(|i| i.verify_single().map_err(|_| ED25519_FAILED.to_string())).collect()
}

/// Like [`check`], but an ed25519 signature is returned for batch verification.
pub fn check_deferred(line: &LogLine) -> Pending {
    match check_inner(line) {
        Ok(p) => p,
        Err(e) => Pending::Done(Err(e)),
    }
}

fn check_inner(line: &LogLine) -> Result<Pending, String> {
    let signature = unhex(line.signature.as_deref().unwrap_or_default())?;
    let public = unhex(&line.public)?;
    let key_type: WireKeyType = line.key_type.parse().map_err(|e| format!("key type: {e}"))?;
    let key_type = KeyType(key_type.0);
    match line.method.as_str() {
        "sign" => check_sign(line, key_type, &public, &signature),
        "vrfSign" => check_vrf(line, &public, &signature).map(|()| Pending::Done(Ok(()))),
        other => Err(format!("method {other} does not release signatures")),
    }
}

fn check_sign(line: &LogLine, key_type: KeyType, public: &[u8], signature: &[u8]) -> Result<Pending, String> {
    let message = unhex(line.message.as_deref().ok_or("no message recorded")?)?;
    if let Some(h) = &line.payload_hash {
        if unhex(h)? != payload_hash(&message) {
            return Err("payloadHash is not blake2_256 of the recorded message".into());
        }
    }
    let wire: SignContext = match &line.preimage {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("pre-image: {e}"))?,
        None => SignContext::None,
    };
    let context = match wire {
        SignContext::None => exclave_policies::SignContext::None,
        SignContext::BabeSeal { header } => exclave_policies::SignContext::BabeSeal { header: header.0 },
        SignContext::BeefyCommitment { commitment } => exclave_policies::SignContext::BeefyCommitment { commitment: commitment.0 },
    };
    let crypto = key_type.crypto().ok_or_else(|| format!("unsupported key type {key_type}"))?;
    // Logs written before `prehashed` was recorded: a BEEFY commitment is always prehashed.
    let prehashed = line.prehashed || matches!(context, exclave_policies::SignContext::BeefyCommitment { .. });
    let req = exclave_policies::SignRequest { key_type, crypto, message: &message, context: &context, prehashed };
    match classify(&req).map_err(|e| format!("the message does not rebuild from the recorded pre-image: {e}"))? {
        Classification::Claimed(duty) if Some(duty) != line.duty => {
            return Err(format!("the pre-image is for {duty}, the record names {:?}", line.duty));
        }
        Classification::Unclaimed(_) if line.duty.is_some() => return Err("the record names a duty for an unclaimed message".into()),
        _ => {}
    }
    if crypto == Crypto::Ed25519 {
        let (Ok(public), Ok(sig)) = (<[u8; 32]>::try_from(public), <[u8; 64]>::try_from(signature)) else {
            return Err("an ed25519 key is 32 bytes and a signature 64".into());
        };
        let item = (ed25519_zebra::VerificationKeyBytes::from(public), ed25519_zebra::Signature::from_bytes(&sig), &message);
        return Ok(Pending::Ed25519(item.into()));
    }
    if verify_plain(crypto, public, &message, signature, prehashed) {
        Ok(Pending::Done(Ok(())))
    } else {
        Err(format!("the {crypto} signature does not verify against the public key"))
    }
}

/// Verify a plain signature as Substrate does (`Pair::verify`; `verify_prehashed` for ecdsa).
pub fn verify_plain(crypto: Crypto, public: &[u8], message: &[u8], signature: &[u8], prehashed: bool) -> bool {
    match crypto {
        Crypto::Sr25519 => match (sr25519::Public::try_from(public), sr25519::Signature::try_from(signature)) {
            (Ok(p), Ok(s)) => sr25519::Pair::verify(&s, message, &p),
            _ => false,
        },
        Crypto::Ed25519 => match (ed25519::Public::try_from(public), ed25519::Signature::try_from(signature)) {
            (Ok(p), Ok(s)) => ed25519::Pair::verify(&s, message, &p),
            _ => false,
        },
        Crypto::Ecdsa => match (ecdsa::Public::try_from(public), ecdsa::Signature::try_from(signature)) {
            (Ok(p), Ok(s)) if prehashed => match <[u8; 32]>::try_from(message) {
                Ok(hash) => ecdsa::Pair::verify_prehashed(&s, &hash, &p),
                Err(_) => false,
            },
            (Ok(p), Ok(s)) => ecdsa::Pair::verify(&s, message, &p),
            _ => false,
        },
    }
}

fn check_vrf(line: &LogLine, public: &[u8], signature: &[u8]) -> Result<(), String> {
    let req: VrfRequest =
        serde_json::from_value(line.preimage.clone().ok_or("no VRF inputs recorded")?).map_err(|e| format!("VRF inputs: {e}"))?;
    if req.public.0 != public {
        return Err("the VRF inputs name another public key".into());
    }
    let randomness: [u8; 32] = req.randomness.0.try_into().map_err(|_| "randomness is not 32 bytes")?;
    let sig = decode_vrf_signature(signature)?;
    let data = exclave_policies::vrf_sign_data(&VrfContext { randomness, slot: req.slot, epoch: req.epoch });
    let public = sr25519::Public::try_from(public).map_err(|_| "not an sr25519 public key")?;
    if public.vrf_verify(&data, &sig) {
        Ok(())
    } else {
        Err("the VRF signature does not verify for the recorded slot, epoch and randomness".into())
    }
}

fn decode_vrf_signature(bytes: &[u8]) -> Result<sr25519::vrf::VrfSignature, String> {
    use codec::Decode;
    if bytes.len() != 96 {
        return Err(format!("a VRF signature is 32-byte pre-output ++ 64-byte proof; got {} bytes", bytes.len()));
    }
    sr25519::vrf::VrfSignature::decode(&mut &bytes[..]).map_err(|e| format!("VRF signature: {e}"))
}
