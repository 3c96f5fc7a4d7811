//! The requests a connection answers from its session and the node's users: AUTH and the
//! ACL commands.

use std::time::Duration;

use tessera_protocol::commands::access::{category_names, commands_in};
use tessera_protocol::wire::Payload;
use tessera_protocol::{AdminCommand, Command, ErrorCode, Value};

use crate::acl::{Acl, Refusal, Session};

/// What a session command came to.
pub struct Answer {
    /// The reply.
    pub reply: Value,
    /// A failed authentication: how long the connection waits before its next request.
    pub pause: Option<Duration>,
    /// The connection must close (its user is gone).
    pub close: bool,
    /// The session's rules refused the request.
    pub denied: bool,
}

impl Answer {
    fn reply(reply: Value) -> Answer {
        Answer {
            reply,
            pause: None,
            close: false,
            denied: false,
        }
    }

    /// The answer to a request the session's rules refused.
    pub fn refused(refusal: &Refusal) -> Answer {
        Answer {
            reply: refusal.to_value(),
            pause: None,
            close: *refusal == Refusal::UserGone,
            denied: true,
        }
    }
}

/// Answers AUTH or an ACL command (see `acl::is_session_command`).
pub fn answer<P: Payload>(acl: &Acl, session: &mut Session, command: &Command<P>) -> Answer {
    let Command::Admin(admin) = command else {
        return Answer::reply(Value::error(ErrorCode::Internal, "not a session command"));
    };
    if let AdminCommand::Auth { username, password } = admin {
        return authenticate(
            acl,
            session,
            username.as_ref().map(|u| u.as_ref()),
            password.as_ref(),
        );
    }
    if let Err(refusal) = session.check(acl, command) {
        return Answer::refused(&refusal);
    }
    Answer::reply(match admin {
        AdminCommand::AclWhoami => Value::text(session.username().unwrap_or_default()),
        AdminCommand::AclSetUser { username, rules } => {
            match std::str::from_utf8(username.as_ref()) {
                Ok(name) => match acl.set_user(name, rules) {
                    Ok(()) => Value::Ok,
                    Err(error) => Value::error(ErrorCode::Syntax, error),
                },
                Err(_) => Value::error(ErrorCode::Syntax, "a username must be UTF-8"),
            }
        }
        AdminCommand::AclDelUser(names) => match acl.delete_users(names) {
            Ok(removed) => Value::Int(removed as i64),
            Err(error) => Value::error(ErrorCode::Syntax, error),
        },
        AdminCommand::AclList => {
            Value::Array(acl.describe_all().into_iter().map(Value::text).collect())
        }
        AdminCommand::AclCat(None) => Value::Array(category_names().map(Value::text).collect()),
        AdminCommand::AclCat(Some(category)) => {
            let name = String::from_utf8_lossy(category.as_ref()).to_ascii_lowercase();
            match commands_in(name.trim_start_matches('@')) {
                Some(specs) => Value::Array(
                    specs
                        .into_iter()
                        .map(|spec| Value::text(spec.name.to_ascii_lowercase()))
                        .collect(),
                ),
                None => Value::error(ErrorCode::Syntax, format!("unknown ACL category '{name}'")),
            }
        }
        _ => Value::error(ErrorCode::Internal, "not a session command"),
    })
}

/// Tries credentials; a failure answers WRONGPASS and asks for a pause.
pub fn authenticate(
    acl: &Acl,
    session: &mut Session,
    username: Option<&[u8]>,
    password: &[u8],
) -> Answer {
    match session.authenticate(acl, username, password) {
        Ok(()) => Answer::reply(Value::Ok),
        Err(pause) => Answer {
            reply: Value::error(
                ErrorCode::WrongPass,
                "invalid username-password pair or user is disabled",
            ),
            pause: Some(pause),
            close: false,
            denied: false,
        },
    }
}
