package logs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// followedFile is one path matched by DYNOSCOPE_LOG_FILES, followed like
// `tail -F`: by name, across rotation (rename or delete, then a new file)
// and truncation.
type followedFile struct {
	path string
	f    *os.File
	fi   os.FileInfo // of the open file, to detect rotation by os.SameFile
	off  int64
	sp   *splitter
	src  *sourceState
}

// followFiles polls the globs every FilePoll. Files are read from their
// beginning (a dyno's filesystem starts empty at each boot, so nothing old
// is shipped twice); the stream label is the file's base name.
func (p *Pipeline) followFiles() {
	defer close(p.filesDone)
	files := map[string]*followedFile{}
	buf := make([]byte, readBufSize)
	t := time.NewTicker(p.opts.FilePoll)
	defer t.Stop()
	for {
		stopping := false
		select {
		case <-p.stopFiles:
			stopping = true
		default:
		}
		for _, path := range p.globFiles() {
			if _, ok := files[path]; !ok {
				src := p.addSource(filepath.Base(path), nil)
				if src == nil {
					continue
				}
				files[path] = &followedFile{path: path, sp: newSplitter(int(p.opts.MaxLineBytes)), src: src}
			}
		}
		for _, ff := range files {
			p.pollFile(ff, buf, stopping)
		}
		if stopping {
			for _, ff := range files {
				b := newBatch(ff.src, p.opts.Now())
				ff.sp.flush(b)
				p.endSource(ff.src, b)
				if ff.f != nil {
					ff.f.Close()
				}
			}
			return
		}
		select {
		case <-p.stopFiles:
		case <-t.C:
		}
	}
}

func (p *Pipeline) globFiles() []string {
	var out []string
	for _, g := range p.opts.Files {
		m, err := filepath.Glob(g)
		if err != nil {
			continue // validated by config
		}
		for _, path := range m {
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
				out = append(out, path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// pollFile reads what was appended since the last poll, then handles
// truncation and rotation.
func (p *Pipeline) pollFile(ff *followedFile, buf []byte, all bool) {
	if ff.f == nil {
		f, err := os.Open(ff.path)
		if err != nil {
			return
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return
		}
		ff.f, ff.fi, ff.off = f, fi, 0
	}
	if fi, err := ff.f.Stat(); err == nil && fi.Size() < ff.off { // truncated
		if _, err := ff.f.Seek(0, io.SeekStart); err == nil {
			ff.off = 0
		}
	}
	p.readFile(ff, buf, all)
	cur, err := os.Stat(ff.path)
	if err == nil && os.SameFile(cur, ff.fi) {
		return
	}
	// Rotated or removed: finish the old file, ship its partial line, and
	// open the new one (now or at a later poll).
	p.readFile(ff, buf, true)
	b := newBatch(ff.src, p.opts.Now())
	ff.sp.flush(b)
	p.offer(b)
	ff.f.Close()
	ff.f, ff.fi, ff.off = nil, nil, 0
	if err == nil {
		p.pollFile(ff, buf, all)
	}
}

// readFile reads to the end of the file, pausing (until the next poll)
// while line handling is behind, unless all is set.
func (p *Pipeline) readFile(ff *followedFile, buf []byte, all bool) {
	for {
		if !all && p.intakeBytes.Load() > p.opts.IntakeMaxBytes/2 {
			return
		}
		n, err := ff.f.Read(buf)
		if n > 0 {
			ff.off += int64(n)
			b := newBatch(ff.src, p.opts.Now())
			ff.sp.feed(buf[:n], b)
			p.offer(b)
		}
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				p.logger.Debug("read log file", "file", ff.path, "err", err)
			}
			return
		}
	}
}
