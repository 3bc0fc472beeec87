package callevents_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/callevents/callevents"

// Ensure imports point one way (README "Layout"): gen/ and wsdl/ import
// nothing of ours; service/ uses the root, gen/ and wsdl/; store/ and
// dispatcher/ use the root only; only cmd/ wires everything. The test
// helpers (store/storetest, store/testdb, dispatcher/dispatchertest) and
// cmd/internal/cliflag have rules of their own, and no package but a test
// helper imports a test helper (go list leaves test files out). The root stays
// free of gorm, XML and HTTP, gorm stays in store/, and generated types stay
// in service/.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string][]string{ // top folder → our packages it may depend on
		"":           {},
		"gen":        {},
		"wsdl":       {},
		"service":    {"", "gen", "wsdl"},
		"store":      {""},
		"dispatcher": {""},
	}
	// Packages inside the top folders, ruled on their own: the test helpers
	// (imported only by tests and by each other) and cmd's flag types.
	allowedPackages := map[string][]string{
		"store/storetest":           {""},
		"store/testdb":              {"", "store", "store/storetest"},
		"dispatcher/dispatchertest": {},
		"cmd/internal/cliflag":      {},
	}
	testHelpers := []string{"store/storetest", "store/testdb", "dispatcher/dispatchertest"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		pkg := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if rules, ok := allowedPackages[pkg]; ok {
			for _, dep := range p.Deps {
				if d, ours := strings.CutPrefix(dep, module+"/"); ours && !contains(rules, d) || dep == module && !contains(rules, "") {
					t.Errorf("%s imports %s: it may use only %q", p.ImportPath, dep, rules)
				}
			}
		}
		for _, dep := range p.Deps {
			if d, ours := strings.CutPrefix(dep, module+"/"); ours && contains(testHelpers, d) && !contains(testHelpers, pkg) {
				t.Errorf("%s imports the test helper %s: only tests may", p.ImportPath, dep)
			}
		}
		top := topFolder(p.ImportPath)
		rules, ruled := allowed[top]
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module) {
				depTop := topFolder(dep)
				if ruled && depTop != top && !contains(rules, depTop) {
					t.Errorf("%s imports %s: %s/ may use only %v", p.ImportPath, dep, top, rules)
				}
				if depTop == "gen" && top != "service" && top != "gen" && top != "cmd" {
					t.Errorf("%s imports generated types (%s): they stay in service/", p.ImportPath, dep)
				}
			}
			if strings.HasPrefix(dep, "gorm.io/") && top != "store" && top != "cmd" {
				t.Errorf("%s depends on %s: gorm stays in store/", p.ImportPath, dep)
			}
			if top == "" && (dep == "encoding/xml" || dep == "net/http" || strings.HasPrefix(dep, "gorm.io/")) {
				t.Errorf("the root package depends on %s: it holds the domain only", dep)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list saw only %d packages", seen)
	}
}

// topFolder returns the first folder of an import path inside the module
// ("" for the root package).
func topFolder(path string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	top, _, _ := strings.Cut(rest, "/")
	return top
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
