module github.com/callevents/callevents

go 1.26

tool github.com/hooklift/gowsdl/cmd/gowsdl

require (
	github.com/hooklift/gowsdl v0.5.0
	golang.org/x/crypto v0.45.0
)
