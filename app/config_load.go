package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Flags are the configuration flags bound to one command's flag set. Load
// reads the configuration in increasing precedence: defaults, the YAML file
// (--config or ADMIN_CONFIG), ADMIN_* environment variables, flags.
type Flags struct {
	fs     *pflag.FlagSet
	config string
	values map[string]*flagValue // by flag name
}

// BindFlags registers --config and the flags of the fields in scope
// ("all": the database and election name, for the leader commands; "run":
// everything).
func BindFlags(fs *pflag.FlagSet, scope string) *Flags {
	f := &Flags{fs: fs, values: map[string]*flagValue{}}
	fs.StringVar(&f.config, "config", "", "YAML config file (env "+ConfigEnv+")")
	def := Default()
	for i := range fields {
		fd := &fields[i]
		if fd.flag == "" || scope != scopeRun && fd.scope != scopeAll {
			continue // no flag (a secret), or not this command's
		}
		v := &flagValue{f: fd, text: fd.get(def)}
		f.values[fd.flag] = v
		usage := fd.usage
		if fd.key != "" {
			usage += " (env " + fd.env + ", key " + fd.key + ")"
		}
		fs.Var(v, fd.flag, usage)
		if fd.hidden {
			_ = fs.MarkHidden(fd.flag)
		}
	}
	return f
}

// Load returns the validated configuration. lookupEnv is os.LookupEnv
// outside tests.
func (f *Flags) Load(lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := Default()
	path := f.config
	if path == "" {
		path, _ = lookupEnv(ConfigEnv)
	}
	if path != "" {
		if err := loadFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	for i := range fields {
		fd := &fields[i]
		v, ok := lookupEnv(fd.env)
		if !ok {
			continue
		}
		if err := fd.set(&cfg, v); err != nil {
			return Config{}, fmt.Errorf("%w: environment %s: %w", ErrInvalidConfig, fd.env, err)
		}
	}
	for name, v := range f.values {
		if !f.fs.Changed(name) {
			continue
		}
		if err := v.f.set(&cfg, v.text); err != nil {
			return Config{}, fmt.Errorf("%w: flag --%s: %w", ErrInvalidConfig, name, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loadFile merges the YAML file at path into cfg; unknown keys are errors.
func loadFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: config file: %w", ErrInvalidConfig, err)
	}
	unknown, err := unknownKeys(data)
	if err != nil {
		return fmt.Errorf("%w: config file %s: not YAML: %w", ErrInvalidConfig, path, err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: config file %s: %s", ErrInvalidConfig, path, strings.Join(unknown, "; "))
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		// sigs.k8s.io/yaml goes through JSON; its prefixes say nothing to
		// someone who wrote YAML.
		msg := err.Error()
		for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		return fmt.Errorf("%w: config file %s: %s", ErrInvalidConfig, path, msg)
	}
	return nil
}

// flagValue is a pflag.Value that checks its text with the field's parser
// at parse time and leaves applying it to Load.
type flagValue struct {
	f    *field
	text string
}

func (v *flagValue) String() string {
	if v == nil || v.f == nil {
		return ""
	}
	return v.text
}

func (v *flagValue) Set(s string) error {
	scratch := Default()
	if err := v.f.set(&scratch, s); err != nil {
		return err
	}
	v.text = s
	return nil
}

func (v *flagValue) Type() string { return v.f.kind }
