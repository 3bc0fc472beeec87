// Package wsdl embeds the service contract, PhoneCallEvents.wsdl, so that the
// SOAP edge can serve the very file gowsdl generated gen/ from. It imports
// nothing of ours.
package wsdl

import _ "embed"

// PhoneCallEvents is the WSDL of the PhoneCallEvents service, schema inline.
//
//go:embed PhoneCallEvents.wsdl
var PhoneCallEvents []byte

// Namespace is the target namespace of PhoneCallEvents.
const Namespace = "urn:callevents:phonecallevents:1"
