#pragma once
// Hop-by-hop header handling for a forwarding proxy (RFC 9110 §7.6.1), as Envoy does it.
//
// A proxy must not forward the fields that describe one connection: Connection itself, every
// field the Connection header names, and the well-known per-hop fields (Keep-Alive,
// Proxy-Connection, TE, Upgrade, Proxy-Authorization). Two exceptions, both Envoy's:
// Transfer-Encoding stays (meshtel streams a body in the framing it arrived in and its serializer
// writes the framing), and `TE: trailers` stays, because it says the end client accepts trailer
// fields (gRPC needs them) rather than anything about this hop.
//
// Pure functions on a header block; no I/O, no state, safe from any thread. Each takes Beast's
// default fields or the proxy's arena-allocated HeaderFields (header_arena.h), with the same
// behaviour; removing fields only frees them (into the arena for HeaderFields), and setting
// `TE: trailers` back allocates one field.

#include "boost/beast/http/fields.hpp"
#include "proxy/http/header_arena.h"

namespace meshtel::proxy {

// Removes the hop-by-hop fields from `fields` (request or response header block).
void RemoveHopByHopHeaders(boost::beast::http::fields& fields);
void RemoveHopByHopHeaders(HeaderFields& fields);

// True when `fields` ask to switch protocols: an Upgrade field naming a protocol and "upgrade"
// among the Connection tokens (compared without regard to case).
bool AsksForUpgrade(const boost::beast::http::fields& fields);
bool AsksForUpgrade(const HeaderFields& fields);

}  // namespace meshtel::proxy
