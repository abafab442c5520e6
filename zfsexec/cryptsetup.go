package zfsexec

import (
	"bytes"
	"context"
	"errors"

	"zcloud/zfsname"
)

// Cryptsetup runs LUKS commands on one host (over SSH on targets). The key
// always travels on stdin (--key-file=-): never argv, never a remote file.
type Cryptsetup struct{ R Runner }

func checkKey(key []byte) error {
	if len(key) < 16 {
		return errors.New("cryptsetup: key shorter than 16 bytes")
	}
	return nil
}

// LuksFormatArgv is the argv of LuksFormat (no key in it).
func LuksFormatArgv(dev zfsname.Device) []string {
	return []string{"cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--key-file=-", dev.String()}
}

// LuksFormat initialises dev as LUKS2 with key. Destroys what dev held.
func (c Cryptsetup) LuksFormat(ctx context.Context, dev zfsname.Device, key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := c.R.Run(ctx, Cmd{Argv: LuksFormatArgv(dev), Stdin: bytes.NewReader(key)})
	return err
}

// OpenArgv is the argv of Open.
func OpenArgv(dev zfsname.Device, name zfsname.MapperName) []string {
	return []string{"cryptsetup", "open", "--type", "luks", "--key-file=-", dev.String(), string(name)}
}

// Open unlocks dev as /dev/mapper/<name>.
func (c Cryptsetup) Open(ctx context.Context, dev zfsname.Device, name zfsname.MapperName, key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := zfsname.ParseMapperName(string(name)); err != nil {
		return err
	}
	_, err := c.R.Run(ctx, Cmd{Argv: OpenArgv(dev, name), Stdin: bytes.NewReader(key)})
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == 2 {
		// cryptsetup's exit 2: "no permission (bad passphrase)".
		ee.Kind = ErrKeyIncorrect
	}
	return err
}

// IsOpen reports whether /dev/mapper/<name> exists: the device is unlocked.
func (c Cryptsetup) IsOpen(ctx context.Context, name zfsname.MapperName) (bool, error) {
	if _, err := zfsname.ParseMapperName(string(name)); err != nil {
		return false, err
	}
	return DeviceExists(ctx, c.R, name.Device())
}

// DeviceExists reports whether the device node dev exists on r's host.
func DeviceExists(ctx context.Context, r Runner, dev zfsname.Device) (bool, error) {
	_, err := r.Run(ctx, Cmd{Argv: []string{"test", "-e", dev.String()}})
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == 1 {
		return false, nil
	}
	return err == nil, err
}

// Close locks /dev/mapper/<name> (the pool on it must be exported first).
func (c Cryptsetup) Close(ctx context.Context, name zfsname.MapperName) error {
	if _, err := zfsname.ParseMapperName(string(name)); err != nil {
		return err
	}
	_, err := c.R.Run(ctx, Cmd{Argv: []string{"cryptsetup", "close", string(name)}})
	return err
}

// IsLuks reports whether dev carries a LUKS header (cryptsetup isLuks exits 1 if not).
func (c Cryptsetup) IsLuks(ctx context.Context, dev zfsname.Device) (bool, error) {
	_, err := c.R.Run(ctx, Cmd{Argv: []string{"cryptsetup", "isLuks", dev.String()}})
	if err == nil {
		return true, nil
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == 1 {
		return false, nil
	}
	return false, err
}
