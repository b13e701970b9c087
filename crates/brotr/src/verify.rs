//! Validating batches of events fast: spread over every core, and each
//! signature verified once.
//!
//! A signature check costs about ten times as much as an id check, and an
//! archive sees the same event many times (once per relay holding it). The
//! signature of an event depends only on its id, its pubkey and its `sig`,
//! and a correct id commits to the pubkey; so once `(id, sig)` has verified,
//! any event with a correct id and the same `(id, sig)` verifies too. Ids are
//! always recomputed; signatures are looked up in [`VerifiedSignatures`]
//! first.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, PoisonError, RwLock};

use nostr::secp256k1::{Message, XOnlyPublicKey, SECP256K1};
use nostr::Event;

use crate::error::{Error, RejectReason, Result};
use crate::event::check_storable;

/// Below this many events validation runs on the calling task: handing
/// them to worker threads would cost more than it saves.
const PARALLEL_THRESHOLD: usize = 64;

/// What identifies a verified signature: the event id, then the signature.
type Key = [u8; 96];

fn key_of(event: &Event) -> Key {
    let mut key = [0; 96];
    key[..32].copy_from_slice(event.id.as_bytes());
    key[32..].copy_from_slice(&event.sig.serialize());
    key
}

/// `(id, sig)` pairs whose signature verified, bounded: two generations of
/// at most `capacity` entries each; when the newer is full, the older is
/// dropped. Keys are whole (no truncated hashes), so a lookup can never let
/// a forged signature through.
#[derive(Debug)]
pub(crate) struct VerifiedSignatures {
    capacity: usize,
    generations: RwLock<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashSet<Key>,
    previous: HashSet<Key>,
}

impl VerifiedSignatures {
    /// Remembers up to about `2 * capacity` signatures; 0 remembers none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: RwLock::new(Generations::default()),
        }
    }

    fn contains(&self, key: &Key) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let generations = self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        generations.current.contains(key) || generations.previous.contains(key)
    }

    fn insert_all(&self, keys: Vec<Key>) {
        if self.capacity == 0 || keys.is_empty() {
            return;
        }
        let mut generations = self
            .generations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            if generations.current.len() >= self.capacity {
                // The new generation is allocated whole at once, reusing the
                // table of the one it retires, rather than grown by doubling
                // (each step a copy): memory stays at two full tables.
                let mut retired = std::mem::take(&mut generations.previous);
                retired.clear();
                retired.reserve(self.capacity);
                generations.previous = std::mem::replace(&mut generations.current, retired);
            }
            generations.current.insert(key);
        }
    }

    /// How many signatures are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let generations = self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        generations.current.len() + generations.previous.len()
    }
}

/// Checks every event as [`validate_event`](crate::validate_event) does,
/// spread over the machine's cores, verifying each signature not already in
/// `verified` once; the signatures that verified are remembered there.
pub(crate) async fn validate_all(
    events: &[&Event],
    verified: &Arc<VerifiedSignatures>,
) -> Result<Vec<Result<(), RejectReason>>> {
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    if events.len() < PARALLEL_THRESHOLD || workers < 2 {
        let (results, keys) = validate_part(events.iter().copied(), verified);
        verified.insert_all(keys);
        return Ok(results);
    }
    let per_worker = events.len().div_ceil(workers);
    let mut handles = Vec::with_capacity(workers);
    for part in events.chunks(per_worker) {
        // Worker threads need owned data; a copy costs far less than a
        // signature check.
        let owned: Vec<Event> = part.iter().map(|event| (*event).clone()).collect();
        let verified = Arc::clone(verified);
        handles.push(tokio::task::spawn_blocking(move || {
            validate_part(owned.iter(), &verified)
        }));
    }
    let mut results = Vec::with_capacity(events.len());
    let mut keys = Vec::new();
    for handle in handles {
        let (part_results, part_keys) = handle
            .await
            .map_err(|source| Error::Validation { source })?;
        results.extend(part_results);
        keys.extend(part_keys);
    }
    verified.insert_all(keys);
    Ok(results)
}

/// Validates `events` in order; returns the results and the keys of the
/// signatures newly verified.
fn validate_part<'a>(
    events: impl Iterator<Item = &'a Event>,
    verified: &VerifiedSignatures,
) -> (Vec<Result<(), RejectReason>>, Vec<Key>) {
    let mut results = Vec::with_capacity(events.size_hint().0);
    // Signatures checked in this part, valid or not; those that verified, in
    // order.
    let mut checked: HashMap<Key, bool> = HashMap::new();
    let mut fresh = Vec::new();
    let mut public_keys = PublicKeys::default();
    for event in events {
        let result = check_storable(event).and_then(|()| {
            if !event.verify_id() {
                return Err(RejectReason::InvalidId);
            }
            let key = key_of(event);
            let valid = match checked.get(&key) {
                Some(valid) => *valid,
                None if verified.contains(&key) => true,
                None => {
                    let valid = public_keys.verify_signature(event);
                    checked.insert(key, valid);
                    if valid {
                        fresh.push(key);
                    }
                    valid
                }
            };
            if valid {
                Ok(())
            } else {
                Err(RejectReason::InvalidSignature)
            }
        });
        results.push(result);
    }
    (results, fresh)
}

/// Public keys parsed once per part of a batch: parsing one (a square root
/// on the curve) costs about an eighth of a signature check, and an author
/// often signs several events of a batch.
#[derive(Default)]
struct PublicKeys(HashMap<[u8; 32], Option<XOnlyPublicKey>>);

impl PublicKeys {
    /// What [`Event::verify_signature`] says, with the event's public key
    /// parsed at most once: the same BIP-340 check through the `secp256k1`
    /// that `nostr` uses, on the message `nostr` signs (the id).
    fn verify_signature(&mut self, event: &Event) -> bool {
        let public_key = *self
            .0
            .entry(event.pubkey.to_bytes())
            .or_insert_with(|| XOnlyPublicKey::from_slice(event.pubkey.as_bytes()).ok());
        public_key.is_some_and(|public_key| {
            let message = Message::from_digest(event.id.to_bytes());
            SECP256K1
                .verify_schnorr(&event.sig, &message, &public_key)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use nostr::{EventBuilder, Keys, Timestamp};

    use super::*;
    use crate::validate_event;

    fn notes(n: usize) -> Vec<Event> {
        let keys = Keys::generate();
        (0..n)
            .map(|i| {
                EventBuilder::text_note(format!("note {i}"))
                    .sign_with_keys(&keys)
                    .unwrap()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_event_gets_the_result_of_validate_event_in_order() {
        let mut events = notes(200);
        events[7].content.push('x');
        events[150].sig = events[151].sig;
        events[160].created_at = Timestamp::from_secs(u64::MAX);
        let refs: Vec<&Event> = events.iter().collect();
        let verified = Arc::new(VerifiedSignatures::new(1000));
        let results = validate_all(&refs, &verified).await.unwrap();
        let expected: Vec<_> = events.iter().map(validate_event).collect();
        assert_eq!(results, expected);
        assert_eq!(
            results.iter().filter(|r| r.is_err()).count(),
            3,
            "{results:?}"
        );
        assert_eq!(verified.len(), 197);
    }

    #[tokio::test]
    async fn a_remembered_signature_still_needs_a_correct_id() {
        let events = notes(1);
        let verified = Arc::new(VerifiedSignatures::new(10));
        assert_eq!(
            validate_all(&[&events[0]], &verified).await.unwrap(),
            [Ok(())]
        );
        assert_eq!(verified.len(), 1);

        // Same id and sig, other content: the id check refuses it.
        let mut tampered = events[0].clone();
        tampered.content.push('!');
        assert_eq!(
            validate_all(&[&tampered], &verified).await.unwrap(),
            [Err(RejectReason::InvalidId)]
        );
        // The original again: accepted from memory.
        assert_eq!(
            validate_all(&[&events[0]], &verified).await.unwrap(),
            [Ok(())]
        );
    }

    #[tokio::test]
    async fn a_bad_signature_is_not_remembered_and_is_refused_every_time() {
        let events = notes(2);
        let mut forged = events[0].clone();
        forged.sig = events[1].sig;
        let verified = Arc::new(VerifiedSignatures::new(10));
        for _ in 0..2 {
            assert_eq!(
                validate_all(&[&forged, &forged], &verified).await.unwrap(),
                [
                    Err(RejectReason::InvalidSignature),
                    Err(RejectReason::InvalidSignature)
                ]
            );
        }
        assert_eq!(verified.len(), 0);
    }

    #[test]
    fn the_signature_check_agrees_with_nostr() {
        let events = notes(3);
        let mut forged = events[0].clone();
        forged.sig = events[1].sig;
        // Not a point of the curve: no x-only key has these bytes.
        let not_a_key = nostr::PublicKey::from_slice(&[0xff; 32]);
        let mut keys = PublicKeys::default();
        for event in [&events[0], &events[2], &forged, &events[0]] {
            assert_eq!(keys.verify_signature(event), event.verify_signature());
        }
        if let Ok(pubkey) = not_a_key {
            let mut strange = events[0].clone();
            strange.pubkey = pubkey;
            assert!(!keys.verify_signature(&strange));
            assert!(!strange.verify_signature());
        }
        assert!(keys.0.len() <= 2);
    }

    #[tokio::test]
    async fn memory_is_bounded_to_two_generations() {
        let events = notes(25);
        let refs: Vec<&Event> = events.iter().collect();
        let verified = Arc::new(VerifiedSignatures::new(10));
        validate_all(&refs, &verified).await.unwrap();
        assert!(verified.len() <= 20, "{}", verified.len());
        // The newest are remembered.
        assert!(verified.contains(&key_of(&events[24])));

        let none = Arc::new(VerifiedSignatures::new(0));
        validate_all(&refs, &none).await.unwrap();
        assert_eq!(none.len(), 0);
    }
}
