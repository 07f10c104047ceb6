package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// readConfig reads a --config file: TOML, one key per flag, named as the
// flag (data-dir = "/var/lib/zkbank"). Strings, integers, booleans, and
// for zk an array of host:port as well. An unknown key is an error, so
// a typo never passes for a default.
func readConfig(path string, fs *flag.FlagSet) (map[string]string, error) {
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	out := map[string]string{}
	for _, key := range md.Keys() {
		name := key.String()
		if len(key) != 1 || fs.Lookup(name) == nil || name == "config" {
			return nil, fmt.Errorf("--config %s: unknown setting %q (bankd --help lists them, without the --)", path, name)
		}
		v, err := configValue(raw[name])
		if err != nil {
			return nil, fmt.Errorf("--config %s: %s: %w", path, name, err)
		}
		out[name] = v
	}
	return out, nil
}

// configValue is a TOML value as the flag's text.
func configValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("an array holds strings only, not %T", e)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	default:
		return "", fmt.Errorf("%T is not a setting's type: use a string, an integer or a boolean", v)
	}
}

// fillFlags sets each flag that the command line did not: from its
// BANKD_* variable, else from the config file. Every value goes through
// the flag's own parser, and then validate: one place checks them all.
func fillFlags(fs *flag.FlagSet, lookup func(string) (string, bool), file map[string]string, path string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		if given[name] {
			continue
		}
		f := fs.Lookup(name)
		if v, ok := lookup(envName(name)); ok {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("%s=%q: %w", envName(name), v, err)
			}
			continue
		}
		if v, ok := file[name]; ok {
			if err := f.Value.Set(v); err != nil {
				return fmt.Errorf("--config %s: %s = %q: %w", path, name, v, err)
			}
		}
	}
	return nil
}

// envName is the variable that sets flag name: BANKD_DATA_DIR for
// data-dir.
func envName(name string) string {
	return "BANKD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configPath is --config, or BANKD_CONFIG when the flag is not given.
func configPath(fs *flag.FlagSet, lookup func(string) (string, bool)) string {
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	v, _ := lookup(envName("config"))
	return v
}
