//! A journey as the scaled mode's correlators store it: one version byte, then postcard.
//! postcard is not self-describing, so a reader refuses a version it does not know rather
//! than misreading it.

use super::Journey;

/// Bumped on any change to [`Journey`] or the types in it.
pub const JOURNEY_VERSION: u8 = 1;

/// Why a stored journey did not decode.
#[derive(Debug)]
pub enum StoredJourneyError {
    Empty,
    Version { got: u8, want: u8 },
    Body(postcard::Error),
}

impl std::fmt::Display for StoredJourneyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredJourneyError::Empty => write!(f, "empty journey"),
            StoredJourneyError::Version { got, want } => {
                write!(f, "journey version {got}, this collector reads {want}")
            }
            StoredJourneyError::Body(e) => write!(f, "journey body: {e}"),
        }
    }
}

impl std::error::Error for StoredJourneyError {}

pub fn encode(j: &Journey) -> Vec<u8> {
    let out = vec![JOURNEY_VERSION];
    // Serialising into a Vec fails only on types postcard cannot express; Journey has none.
    match postcard::to_extend(j, out) {
        Ok(v) => v,
        Err(e) => {
            log::error!("journey encoding: {e}");
            Vec::new()
        }
    }
}

pub fn decode(bytes: &[u8]) -> Result<Journey, StoredJourneyError> {
    let (&v, body) = bytes.split_first().ok_or(StoredJourneyError::Empty)?;
    if v != JOURNEY_VERSION {
        return Err(StoredJourneyError::Version {
            got: v,
            want: JOURNEY_VERSION,
        });
    }
    postcard::from_bytes(body).map_err(StoredJourneyError::Body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journeys_read_back_as_they_were() {
        let r = crate::correlate::testbed::flannel_pings(5);
        assert!(!r.journeys.is_empty());
        for j in &r.journeys {
            let bytes = encode(j);
            assert_eq!(bytes[0], JOURNEY_VERSION);
            assert_eq!(&decode(&bytes).unwrap(), j);
        }
        let gso = crate::correlate::testbed::gso_upload(&[2]);
        for j in &gso.journeys {
            assert_eq!(&decode(&encode(j)).unwrap(), j);
        }
    }

    #[test]
    fn other_versions_and_damage_are_errors() {
        let r = crate::correlate::testbed::flannel_pings(1);
        let mut bytes = encode(&r.journeys[0]);
        assert!(matches!(decode(&[]), Err(StoredJourneyError::Empty)));
        bytes[0] = JOURNEY_VERSION + 1;
        assert!(matches!(
            decode(&bytes),
            Err(StoredJourneyError::Version { got, .. }) if got == JOURNEY_VERSION + 1
        ));
        bytes[0] = JOURNEY_VERSION;
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(decode(cut), Err(StoredJourneyError::Body(_))));
    }
}
