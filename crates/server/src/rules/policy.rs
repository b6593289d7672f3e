//! Roles and their permissions, from a TOML policy file or the built-in default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// What a role may do beyond using its own vaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Create, list, remove users and change roles.
    ManageUsers,
    /// Read everyone's audit entries.
    ReadAllAudit,
    /// Create vaults and write objects.
    WriteVaults,
    /// Share vaults with other users.
    ShareVaults,
}

/// Role name → permissions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    roles: BTreeMap<String, Role>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Role {
    permissions: Vec<Permission>,
    /// Default storage quota of the role's users (`enc user set-quota` overrides it).
    #[serde(default, deserialize_with = "quota")]
    quota: Option<u64>,
}

fn quota<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    crate::config::parse_size(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The built-in policy, also printed by `enc-server --generate-policy`.
pub const DEFAULT_POLICY: &str = r#"# enc role policy. Every user may read vaults they own or that are shared with them;
# everything else needs a permission:
#   manage_users    create, list and remove users, change roles
#   read_all_audit  read every audit entry (others see their own)
#   write_vaults    create vaults, push and remove objects
#   share_vaults    share and unshare vaults
# `quota` (optional) is the default storage limit of the role's users, e.g. "10GiB";
# `enc user set-quota NAME SIZE` overrides it per user. Unset: unlimited.

[roles.admin]
permissions = ["manage_users", "read_all_audit", "write_vaults", "share_vaults"]

[roles.user]
permissions = ["write_vaults", "share_vaults"]
# quota = "100GiB"
"#;

impl Default for Policy {
    fn default() -> Self {
        toml::from_str(DEFAULT_POLICY).expect("built-in policy parses")
    }
}

impl Policy {
    /// Loads a policy file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read policy {}: {e}", path.display()))?;
        let policy: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("policy {}: {e}", path.display()))?;
        anyhow::ensure!(
            policy
                .roles
                .values()
                .any(|r| r.permissions.contains(&Permission::ManageUsers)),
            "policy {}: no role has manage_users, so nobody could administer the server",
            path.display()
        );
        Ok(policy)
    }

    /// Whether `role` exists.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Role names.
    pub fn role_names(&self) -> Vec<&str> {
        self.roles.keys().map(String::as_str).collect()
    }

    /// The quota a user has: their own, else their role's default; `None` is unlimited.
    pub fn quota_of(&self, user: &enc_store::UserRow) -> Option<u64> {
        match user.quota_bytes {
            Some(q) if q as u64 >= enc_proto::UNLIMITED_QUOTA => None,
            Some(q) => Some(q.max(0) as u64),
            None => self.roles.get(&user.role).and_then(|r| r.quota),
        }
    }

    /// Whether `role` grants `perm`; unknown roles grant nothing.
    pub fn allows(&self, role: &str, perm: Permission) -> bool {
        self.roles
            .get(role)
            .is_some_and(|r| r.permissions.contains(&perm))
    }
}
