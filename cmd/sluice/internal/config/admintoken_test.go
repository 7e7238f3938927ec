package config

import (
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef-token"

func TestParseRejectsAdminToken(t *testing.T) {
	checkRejects(t, []rejectCase{
		{name: "no token off loopback", yaml: valid + "admin: \"0.0.0.0:9001\"\n", key: "admin_token",
			msg:     `required when admin "0.0.0.0:9001" is not a loopback address`,
			wantAll: `sluice.yaml: admin_token: required when admin "0.0.0.0:9001" is not a loopback address: the admin API needs a bearer token (or set admin_token_file)`},
		{name: "no token on a LAN address", yaml: valid + "admin: \"10.1.2.3:9001\"\n", key: "admin_token", msg: "required"},
		{name: "empty token off loopback", yaml: valid + "admin: \"[::]:9001\"\nadmin_token: \"\"\n", key: "admin_token", msg: "required"},
		{name: "short", yaml: valid + "admin_token: short\n", key: "admin_token", msg: "at least 16 characters, got 5"},
		{name: "space", yaml: valid + "admin_token: \"0123456789 abcdefgh\"\n", key: "admin_token", msg: "printable ASCII without spaces"},
		{name: "redacted placeholder", yaml: valid + "admin_token: \"" + RedactedToken + "\"\n", key: "admin_token", msg: "at least 16"},
		{name: "both", yaml: valid + "admin_token: " + testToken + "\nadmin_token_file: /etc/token\n", key: "admin_token_file", msg: "not both"},
		{name: "missing file", yaml: valid + "admin: \"0.0.0.0:9001\"\nadmin_token_file: /nonexistent/token\n", key: "admin_token_file", msg: "no such file",
			wantAll: "sluice.yaml: admin_token_file: open /nonexistent/token: no such file or directory"},
		{name: "env, off loopback", yaml: valid, env: []string{"SLUICE_ADMIN=0.0.0.0:9001"}, key: "admin_token", msg: "required"},
		{name: "env token short", yaml: valid, env: []string{"SLUICE_ADMIN_TOKEN=abc"}, key: "admin_token", msg: "at least 16", source: "env SLUICE_ADMIN_TOKEN"},
	})
}

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	writeTemp(t, dir, "secrets/token", "\n  "+testToken+"\n")
	writeTemp(t, dir, "empty", " \n")
	for _, tc := range []struct {
		name, yaml string
		env        []string
		token      string
		err        string
	}{
		{name: "loopback needs none", yaml: valid},
		{name: "localhost needs none", yaml: valid + "admin: \"localhost:9001\"\n"},
		{name: "token off loopback", yaml: valid + "admin: \"0.0.0.0:9001\"\nadmin_token: " + testToken + "\n", token: testToken},
		{name: "token on loopback", yaml: valid + "admin_token: " + testToken + "\n", token: testToken},
		{name: "file, trimmed, relative to the config", yaml: valid + "admin: \"0.0.0.0:9001\"\nadmin_token_file: secrets/token\n", token: testToken},
		{name: "env", yaml: valid + "admin: \"0.0.0.0:9001\"\n", env: []string{"SLUICE_ADMIN_TOKEN=" + testToken}, token: testToken},
		{name: "empty file", yaml: valid + "admin_token_file: empty\n", err: "admin_token_file: " + filepath.Join(dir, "empty") + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(writeTemp(t, dir, "sluice.yaml", tc.yaml), tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AdminToken != tc.token {
				t.Errorf("token %q, want %q", c.AdminToken, tc.token)
			}
		})
	}
}

// Marshal never prints the token: a literal one is redacted, one from a
// file is printed as the file, which parses back to the same config.
func TestMarshalRedactsAdminToken(t *testing.T) {
	dir := t.TempDir()
	writeTemp(t, dir, "token", testToken)
	c, err := Load(writeTemp(t, dir, "a.yaml", valid+"admin_token: "+testToken+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), testToken) || !strings.Contains(string(out), "admin_token: "+RedactedToken+"\n") {
		t.Errorf("literal token not redacted:\n%s", out)
	}
	c, err = Load(writeTemp(t, dir, "b.yaml", valid+"admin_token_file: token\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, c, "admin_token_file: "+filepath.Join(dir, "token")+"\n")
	if out, _ := c.Marshal(); strings.Contains(string(out), testToken) {
		t.Errorf("token from a file printed:\n%s", out)
	}
}
