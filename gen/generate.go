// Package gen holds the Go types that gowsdl generates from
// wsdl/PhoneCallEvents.wsdl. It is output only: edit the WSDL and run
// `go generate ./gen`, never this package by hand.
package gen

//go:generate go tool gowsdl -d .. -p gen -o phonecallevents.go ../wsdl/PhoneCallEvents.wsdl
