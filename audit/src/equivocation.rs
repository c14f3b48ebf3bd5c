//! Equivocations across logs: two released signatures for one duty (same chain, key type,
//! public key and claim coordinates) with different payloads, or, for BABE seals (sr25519 is
//! randomised), two different signatures. Each is reported with the Substrate proof a runtime
//! accepts, SCALE-encoded and checked with the runtime's own checker.

use super::AuditError;
use codec::{Decode, Encode};
use exclave_policies::{payload_hash, ChainId, ClaimKey, Duty, KeyType};
use exclave_protocol::{SignContext, WireKeyType};
use exclave_signing_log::{unhex, unhex32, LogLine};
use serde::Serialize;
use sp_core::H256;
use sp_runtime::{generic::DigestItem, traits::BlakeTwo256};
use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, Seek, SeekFrom},
    path::PathBuf,
};

/// Where a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Index into [`Index::files`].
    pub file: u32,
    /// Byte offset of the line.
    pub offset: u64,
    /// 1-based line number.
    pub line: u64,
}

struct Seen {
    payload: [u8; 32],
    signature: [u8; 32],
    loc: Loc,
}

/// The first signature seen per duty, and the conflicts found.
#[derive(Default)]
pub struct Index {
    /// Files by [`Loc::file`].
    pub files: Vec<PathBuf>,
    seen: HashMap<[u8; 32], Seen>,
    conflicts: Vec<(Loc, Loc)>,
    reported: HashSet<([u8; 32], [u8; 32], [u8; 32])>,
}

fn claim_key(line: &LogLine, duty: Duty) -> Option<[u8; 32]> {
    let key_type: WireKeyType = line.key_type.parse().ok()?;
    let key =
        ClaimKey { chain: ChainId(unhex32(&line.chain).ok()?), key_type: KeyType(key_type.0), public: unhex(&line.public).ok()?, duty };
    Some(sp_crypto_hashing::blake2_256(&key.to_bytes()))
}

impl Index {
    /// Note a released signature for a claimed duty.
    pub fn insert(&mut self, line: &LogLine, loc: Loc) {
        let (Some(duty), true) = (line.duty, line.released()) else { return };
        let Some(key) = claim_key(line, duty) else { return };
        let Ok(message) = unhex(line.message.as_deref().unwrap_or_default()) else { return };
        let payload = payload_hash(&message);
        let signature = payload_hash(line.signature.as_deref().unwrap_or_default().as_bytes());
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, Seen { payload, signature, loc });
            }
            Some(first) => {
                let randomised = matches!(duty, Duty::BabeSeal { .. });
                let differs = first.payload != payload || (randomised && first.signature != signature);
                if differs && self.reported.insert((key, payload, signature)) {
                    self.conflicts.push((first.loc, loc));
                }
            }
        }
    }

    /// How many conflicts were found.
    pub fn len(&self) -> usize {
        self.conflicts.len()
    }

    /// Whether none were found.
    pub fn is_empty(&self) -> bool {
        self.conflicts.is_empty()
    }

    /// Re-read the conflicting lines and build the reports with their proofs.
    pub fn into_equivocations(self) -> Result<Vec<Equivocation>, AuditError> {
        let mut out = Vec::new();
        for (a, b) in &self.conflicts {
            let (first, second) = (self.read(*a)?, self.read(*b)?);
            out.push(Equivocation::build(&first, &second));
        }
        Ok(out)
    }

    fn read(&self, loc: Loc) -> Result<Side, AuditError> {
        let path = &self.files[loc.file as usize];
        let io = super::io_err(path);
        let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(&io)?);
        f.seek(SeekFrom::Start(loc.offset)).map_err(&io)?;
        let mut buf = Vec::new();
        f.read_until(b'\n', &mut buf).map_err(&io)?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = LogLine::parse(&buf)
            .map_err(|e| AuditError::Usage(format!("{}: line {} changed during the audit: {e}", path.display(), loc.line)))?;
        Ok(Side { file: path.display().to_string(), line: loc.line, record: line })
    }
}

struct Side {
    file: String,
    line: u64,
    record: LogLine,
}

/// One side of an equivocation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signed {
    /// The signer whose log holds it.
    pub signer: String,
    /// The client it was released to.
    pub client: String,
    /// File and 1-based line.
    pub file: String,
    /// Line.
    pub line: u64,
    /// Sequence number.
    pub seq: u64,
    /// Unix ms.
    pub time_ms: u64,
    /// blake2_256 of the message, hex.
    pub payload_hash: String,
    /// The signature, hex.
    pub signature: String,
}

/// The Substrate proof for an equivocation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The Rust type, as the runtime's `report_equivocation` call takes it.
    pub format: &'static str,
    /// SCALE encoding, `0x` hex.
    pub scale: String,
    /// Whether the runtime's own checker accepts it (`check_equivocation_proof` /
    /// `check_double_voting_proof`).
    pub valid: bool,
}

/// Two conflicting signatures for one duty.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Equivocation {
    /// `babe-seal`, `grandpa-prevote`, `grandpa-precommit`, `grandpa-primary-propose`,
    /// `beefy-vote` or `heartbeat` (the last two propose/heartbeat are not slashable).
    pub kind: String,
    /// The chain.
    pub chain: String,
    /// The key type.
    pub key_type: String,
    /// The offender's public key, hex.
    pub public: String,
    /// The duty.
    pub duty: Duty,
    /// The first signature seen.
    pub first: Signed,
    /// The conflicting one.
    pub second: Signed,
    /// The proof, where Substrate has one for this duty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    /// Why no proof, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_error: Option<String>,
}

fn signed(s: &Side) -> Signed {
    let r = &s.record;
    let message = unhex(r.message.as_deref().unwrap_or_default()).unwrap_or_default();
    Signed {
        signer: r.signer.clone(),
        client: r.client.clone(),
        file: s.file.clone(),
        line: s.line,
        seq: r.seq,
        time_ms: r.time_ms,
        payload_hash: hex::encode(payload_hash(&message)),
        signature: r.signature.clone().unwrap_or_default(),
    }
}

impl Equivocation {
    fn build(a: &Side, b: &Side) -> Self {
        let duty = a.record.duty.unwrap_or(Duty::Heartbeat { session_index: 0 });
        let (kind, proof) = match duty {
            Duty::BabeSeal { slot, .. } => ("babe-seal".to_string(), babe_proof(a, b, slot)),
            Duty::GrandpaVote { stage, .. } => (format!("grandpa-{}", kebab(&format!("{stage:?}"))), grandpa_proof(a, b)),
            Duty::BeefyVote { .. } => ("beefy-vote".into(), beefy_proof(a, b)),
            Duty::Heartbeat { .. } => {
                ("heartbeat".into(), Err("a second heartbeat in a session is not slashable (the runtime rejects it)".into()))
            }
        };
        let (proof, proof_error) = match proof {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        Equivocation {
            kind,
            chain: a.record.chain.clone(),
            key_type: a.record.key_type.clone(),
            public: a.record.public.clone(),
            duty,
            first: signed(a),
            second: signed(b),
            proof,
            proof_error,
        }
    }

    /// Print for people.
    pub fn print_human(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "EQUIVOCATION {} by {} 0x{} ({})", self.kind, self.key_type, self.public, self.duty)?;
        for (n, s) in [("first", &self.first), ("second", &self.second)] {
            writeln!(
                out,
                "  {n:<6} signer {} client {} {}:{} seq {} payload 0x{}",
                s.signer, s.client, s.file, s.line, s.seq, s.payload_hash
            )?;
        }
        match (&self.proof, &self.proof_error) {
            (Some(p), _) => {
                writeln!(out, "  proof  {} (runtime check: {}): {}", p.format, if p.valid { "valid" } else { "INVALID" }, p.scale)
            }
            (None, Some(e)) => writeln!(out, "  no proof: {e}"),
            _ => Ok(()),
        }
    }
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn bytes(hex: Option<&str>, what: &str) -> Result<Vec<u8>, String> {
    unhex(hex.ok_or_else(|| format!("no {what} recorded"))?)
}

fn decode<T: Decode>(bytes: &[u8], what: &str) -> Result<T, String> {
    T::decode(&mut &bytes[..]).map_err(|e| format!("{what}: {e}"))
}

fn context(side: &Side) -> Result<SignContext, String> {
    serde_json::from_value(side.record.preimage.clone().ok_or("no pre-image recorded")?).map_err(|e| format!("pre-image: {e}"))
}

/// The header type whose seals the audit checks.
pub type BabeHeader = sp_runtime::generic::Header<u32, BlakeTwo256>;

fn sealed_header(side: &Side) -> Result<BabeHeader, String> {
    let SignContext::BabeSeal { header } = context(side)? else { return Err("the pre-image is not a BABE header".into()) };
    let mut header: BabeHeader = decode(&header.0, "header")?;
    let sig: sp_consensus_babe::AuthoritySignature = decode(&bytes(side.record.signature.as_deref(), "signature")?, "signature")?;
    header.digest.push(<DigestItem as sp_consensus_babe::digests::CompatibleDigestItem>::babe_seal(sig));
    Ok(header)
}

fn babe_proof(a: &Side, b: &Side, slot: u64) -> Result<Proof, String> {
    let proof = babe_equivocation_proof(&unhex(&a.record.public)?, slot, sealed_header(a)?, sealed_header(b)?)?;
    Ok(Proof {
        format: "sp_consensus_babe::EquivocationProof<Header<u32, BlakeTwo256>>",
        scale: format!("0x{}", hex::encode(proof.encode())),
        valid: sp_consensus_babe::check_equivocation_proof(proof),
    })
}

/// The BABE equivocation proof against `public` for two sealed headers of `slot` (not checked:
/// `sp_consensus_babe::check_equivocation_proof` says whether a runtime would accept it).
pub fn babe_equivocation_proof(
    public: &[u8],
    slot: u64,
    first_header: BabeHeader,
    second_header: BabeHeader,
) -> Result<sp_consensus_babe::EquivocationProof<BabeHeader>, String> {
    let offender = decode::<sp_consensus_babe::AuthorityId>(public, "public key")?;
    Ok(sp_consensus_babe::EquivocationProof { offender, slot: slot.into(), first_header, second_header })
}

type Vote = (finality_grandpa::Message<H256, u32>, u64, u64);

fn grandpa_proof(a: &Side, b: &Side) -> Result<Proof, String> {
    let signed = |s: &Side| -> Result<(Vec<u8>, Vec<u8>), String> {
        Ok((bytes(s.record.message.as_deref(), "message")?, bytes(s.record.signature.as_deref(), "signature")?))
    };
    let ((m1, s1), (m2, s2)) = (signed(a)?, signed(b)?);
    let proof = grandpa_equivocation_proof(&unhex(&a.record.public)?, (&m1, &s1), (&m2, &s2))?;
    Ok(Proof {
        format: "sp_consensus_grandpa::EquivocationProof<H256, u32>",
        scale: format!("0x{}", hex::encode(proof.encode())),
        valid: sp_consensus_grandpa::check_equivocation_proof(proof),
    })
}

/// The GRANDPA equivocation proof against `public` for two signed votes, each
/// `(localized_payload bytes, ed25519 signature)` (not checked:
/// `sp_consensus_grandpa::check_equivocation_proof` says whether a runtime would accept it).
/// Two primary proposals have no proof (they are not slashable).
pub fn grandpa_equivocation_proof(
    public: &[u8],
    first: (&[u8], &[u8]),
    second: (&[u8], &[u8]),
) -> Result<sp_consensus_grandpa::EquivocationProof<H256, u32>, String> {
    use finality_grandpa::Message;
    use sp_consensus_grandpa::{AuthorityId, AuthoritySignature, Equivocation as E, EquivocationProof};
    let vote = |(message, signature): (&[u8], &[u8])| -> Result<(Vote, AuthoritySignature), String> {
        Ok((decode(message, "vote")?, decode(signature, "signature")?))
    };
    let (((m1, round, set_id), s1), ((m2, _, _), s2)) = (vote(first)?, vote(second)?);
    let identity: AuthorityId = decode(public, "public key")?;
    let eq = match (m1, m2) {
        (Message::Prevote(x), Message::Prevote(y)) => {
            E::Prevote(finality_grandpa::Equivocation { round_number: round, identity, first: (x, s1), second: (y, s2) })
        }
        (Message::Precommit(x), Message::Precommit(y)) => {
            E::Precommit(finality_grandpa::Equivocation { round_number: round, identity, first: (x, s1), second: (y, s2) })
        }
        _ => return Err("conflicting primary proposals: Substrate has no equivocation proof for them (not slashable)".into()),
    };
    Ok(EquivocationProof::<H256, u32>::new(set_id, eq))
}

fn beefy_proof(a: &Side, b: &Side) -> Result<Proof, String> {
    use sp_consensus_beefy::{
        ecdsa_crypto::{AuthorityId, Signature},
        Commitment, DoubleVotingProof, VoteMessage,
    };
    let vote = |s: &Side| -> Result<VoteMessage<u32, AuthorityId, Signature>, String> {
        let SignContext::BeefyCommitment { commitment } = context(s)? else { return Err("the pre-image is not a BEEFY commitment".into()) };
        Ok(VoteMessage {
            commitment: decode::<Commitment<u32>>(&commitment.0, "commitment")?,
            id: decode(&unhex(&s.record.public)?, "public key")?,
            signature: decode(&bytes(s.record.signature.as_deref(), "signature")?, "signature")?,
        })
    };
    let proof = DoubleVotingProof { first: vote(a)?, second: vote(b)? };
    Ok(Proof {
        format: "sp_consensus_beefy::DoubleVotingProof<u32, ecdsa_crypto::AuthorityId, ecdsa_crypto::Signature>",
        scale: format!("0x{}", hex::encode(proof.encode())),
        valid: sp_consensus_beefy::check_double_voting_proof::<u32, AuthorityId>(&proof),
    })
}
