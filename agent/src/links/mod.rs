//! Which links the agent captures, and their topology: discovered through rtnetlink in the
//! agent's own network namespace and in the namespaces `--netns` names, kept current through
//! link and address events (hot-plug) and a periodic namespace rescan.

pub mod kernel;
pub mod nlmsg;
pub mod rtnl;
