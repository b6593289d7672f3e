//! Statements of `/v1` uploads in flight that both engines run as written (`?` placeholders;
//! the PostgreSQL backend numbers them). An upload is charged to its vault's owner while it
//! streams (`uploads.charged`), so bytes that are not committed yet count against the quota
//! like committed ones; the charge becomes the version's at commit, or is given back when the
//! upload is released or expires.

/// Inserts an upload unless its user already has `?` (the last binding) uploads pending.
pub(crate) const CREATE: &str = "INSERT INTO uploads (id, vault_id, user_id, blob_key, size, hash, created) \
     SELECT ?, ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM uploads WHERE user_id = ?) < ?";

/// The owner charged for an upload still streaming, and what it was charged.
pub(crate) const STREAMING: &str = "SELECT v.owner_id, u.charged FROM uploads u \
     JOIN vaults v ON v.id = u.vault_id WHERE u.id = ? AND u.size = -1";

/// The owner, the charge and the blob of any pending upload.
pub(crate) const PENDING: &str = "SELECT v.owner_id, u.charged, u.blob_key FROM uploads u \
     JOIN vaults v ON v.id = u.vault_id WHERE u.id = ?";

/// Adds to an upload's charge.
pub(crate) const ADD_CHARGE: &str = "UPDATE uploads SET charged = charged + ? WHERE id = ?";

/// Records a streamed upload's size and hash, what stays charged for it, and when it was
/// completed (`created` then counts from there: the commit must follow within the expiry).
pub(crate) const COMPLETE: &str =
    "UPDATE uploads SET size = ?, hash = ?, charged = ?, created = ? WHERE id = ? AND size = -1";

/// Which uploads have expired: completed ones older than the first `?`, any older than the
/// second (one still streaming after that is a crash's leftover).
pub(crate) const EXPIRED: &str = "((size >= 0 AND created < ?) OR created < ?)";

/// What an upload was charged (subtracted from the commit's charge).
pub(crate) const CHARGED: &str = "SELECT charged FROM uploads WHERE id = ?";

/// Forgets one upload.
pub(crate) const DELETE: &str = "DELETE FROM uploads WHERE id = ?";

/// What expired uploads were charged, per vault owner.
pub(crate) const EXPIRED_CHARGES: &str = "SELECT v.owner_id, CAST(SUM(u.charged) AS BIGINT) \
     FROM uploads u JOIN vaults v ON v.id = u.vault_id \
     WHERE ((u.size >= 0 AND u.created < ?) OR u.created < ?) AND u.charged > 0 \
     GROUP BY v.owner_id";

/// What the pending uploads of one vault were charged, per owner (one row at most).
pub(crate) const VAULT_CHARGES: &str = "SELECT v.owner_id, CAST(SUM(u.charged) AS BIGINT) \
     FROM uploads u JOIN vaults v ON v.id = u.vault_id WHERE u.vault_id = ? AND u.charged > 0 \
     GROUP BY v.owner_id";
