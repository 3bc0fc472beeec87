package service

import "slices"

// UAPIRoutes returns every "METHOD pattern" that Register adds under /uapi,
// so that a test can hold them against the OpenAPI document.
func UAPIRoutes() []string {
	return append(slices.Clone(uapiRoutes), "GET "+PathUAPIOpenAPI)
}
