// Package ami turns a real Asterisk's Manager Interface events into call activity.
//
// A Source logs into AMI (a manager.conf user with read = call is enough;
// read = call,dialplan also works) and follows calls by Linkedid, which
// becomes the CallID of every activity of the call:
//
//   - DialBegin (caller Channel → DestChannel): phase dial. callerExtension is
//     the caller channel's endpoint, calledExtension the DestChannel's endpoint
//     (not DestExten: a ring group shows the group's number there), both mapped
//     by the ExtensionMap; callerIdNum/Name from the caller leg ("<unknown>" is
//     dropped); calledNumber is the caller's Exten (the DID the call came in on
//     when its first event showed one of Config.DIDs); calledDid is that number
//     when it is one of Config.DIDs.
//   - DialEnd with DialStatus ANSWER: phase answer for that dial pair (matched
//     by DestUniqueid). Other statuses are kept for the hangup.
//   - Hangup of either leg of a dial pair: phase hangup for that pair, status =
//     its DialStatus (ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL;
//     UNKNOWN without a DialEnd), once per pair whatever the order of the two
//     Hangups. A ring group is one pair per callee: the leg answered elsewhere
//     ends CANCEL.
//   - A leg that hangs up without having dialled or been dialled, with Cause 3
//     (no route: a Dial that found no contact creates no callee channel and no
//     DialBegin) or after a VarSet DIALSTATUS (read = call,dialplan) with a
//     failure: one hangup with that status (CHANUNAVAIL), calledNumber = its
//     Exten and calledExtension = that Exten mapped as an endpoint.
//
// An activity where neither side maps to an extension, or that fails
// callevents.CallActivity.Validate, is not reported. Call state survives
// reconnects (nothing is reported twice by one Source) and is forgotten a
// minute after a call's last leg hangs up, or after Config.CallTTL without
// events.
package ami
