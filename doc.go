// Package callevents is the domain of the callevents service: Call Events
// (webhooks bound to a PBX extension), their event types, methods and
// statuses, extension numbers, API clients with their scopes, coded errors,
// and the interfaces that the edges implement (store/, service/, dispatcher/).
//
// Nothing here knows about SQL, XML or HTTP. The edges translate coded errors
// (see Code) into their wire format exactly once: SOAP faults in service/,
// JSON errors for REST and intake.
package callevents
