//! Black-box HTTP/1.1 behaviour of the proxy (RFC 9112, RFC 9110): raw TCP clients in
//! front, small scripted raw-TCP origins behind, and assertions on the exact bytes each
//! side sees.

use super::*;

mod origin_failures;
mod raw;
mod read;
mod requests;
mod responses;

use raw::*;
use read::*;
