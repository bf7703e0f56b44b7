//! Typed ids: a `CampaignId` cannot be passed where a `ContactListId` is wanted.

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
        }
        impl From<i64> for $name { fn from(v: i64) -> Self { $name(v) } }
        impl From<$name> for i64 { fn from(v: $name) -> i64 { v.0 } }
    )+};
}

id_type!(
    CampaignId,
    CampaignGroupId,
    SettingsProfileId,
    ContactListId,
    RecordId,
    ChainId,
    ImportId,
    DncListId,
    DispositionId,
    ManagerTagId,
    ScriptId,
    AgentGroupId,
    UserId,
    RoleId,
    WebhookEndpointId,
    WebhookDeliveryId,
);
