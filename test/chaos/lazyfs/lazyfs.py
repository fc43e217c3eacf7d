#!/usr/bin/env python3
"""
lazyfs.py: a FUSE filesystem that behaves like a disk losing power (the idea of Jepsen's LazyFS).

    lazyfs.py STATE_DIR MOUNTPOINT      mount (foreground) until unmounted
    lazyfs.py --probe DIR               mount an empty filesystem on DIR and unmount it: exit 0 if FUSE works

Every operation is passed through to a real directory, STATE_DIR/live, which is what the processes
on the mount see. Beside it, STATE_DIR/data and STATE_DIR/namespace.json hold what a disk would
still hold after a power cut, and only that:

- file data: writes and truncates of a file are pending (live only) until fsync or fdatasync of
  that file copies its dirty ranges (and its size) into data/<id>;
- names: a create, unlink, rename, link, mkdir, rmdir, symlink or mknod in a directory is pending
  until fsync of that directory, which records the whole listing of the directory as it is then
  (strict POSIX: stricter than ext4 data=ordered, whose journal commit at a file's fsync also
  carries earlier name changes; a file created and fsynced in a directory never fsynced is lost,
  an unlinked one comes back);
- a new file whose name is durable but whose data was never fsynced comes back empty;
- nothing else (modes at the time of the directory fsync, no times, no xattrs; fallocate is not
  offered, so callers fall back to writing zeros, which are writes like any other).

Files are known by an id of their own (never the backing inode number, which the backing
filesystem reuses), so a file renamed, unlinked or recreated under the same name keeps its
durable data straight.

A power cut, over the control socket STATE_DIR/ctl (one command per line, one answer line):
  cut [torn]        freeze: from now on every operation fails with EIO (the disk is gone), and
                    what is durable can no longer change. `torn` first makes a random half of
                    the pending 4 KiB pages of every file durable, in no order (the kernel had
                    written them back on its own before the cut). The caller then kills the
                    processes using the mount, unmounts it, and mounts again: at mount, live/
                    is rebuilt from what was durable and nothing else.
  delay LO HI       each fsync (files and directories) first waits a random LO..HI ms (an SD card)
  ignore-fsync 0|1  1: fsync returns success and makes nothing durable (a disk that lies; for
                    showing that the tests catch a loss)
  stats             JSON counters
The mount uses the page cache (no direct_io), so SQLite's shared mmap of the -shm works; POSIX
locks are left to the kernel (it keeps them for the processes of this machine).
"""

import errno
import json
import os
import random
import shutil
import socket
import stat
import sys
import threading
import time

try:  # Debian's python3-fusepy names the module fusepy; pip's fusepy names it fuse
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:
    from fuse import FUSE, FuseOSError, Operations

PAGE = 4096


class Node:
    """One file or directory: its id in the durable layer and what of it is not durable yet."""

    __slots__ = ('id', 'dirty', 'min_size')

    def __init__(self, node_id):
        self.id = node_id
        # byte ranges written since the last fsync, [start, end)
        self.dirty = []
        # the smallest size a truncate gave it since the last fsync (bytes past it are zeros unless dirty)
        self.min_size = None


def merge(ranges):
    """Ranges sorted and joined where they touch."""
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


class LazyFs(Operations):
    use_ns = True
    # operations on a file unlinked while open come with no path; ours work on the handle
    flag_nullpath_ok = True

    def __init__(self, state):
        self.state = state
        self.live = os.path.join(state, 'live')
        self.data = os.path.join(state, 'data')
        self.nsfile = os.path.join(state, 'namespace.json')
        self.mu = threading.RLock()
        self.frozen = False
        self.ignore_fsync = False
        self.delay = (0.0, 0.0)
        self.by_ino = {}  # backing inode number -> Node, for the names live/ holds now
        self.fh_node = {}  # open handle (a real fd on live/) -> Node
        self.stats = {'writes': 0, 'fsyncs': 0, 'dirsyncs': 0, 'bytesPersisted': 0, 'tornPages': 0,
                      'droppedBytes': 0}
        os.makedirs(self.data, exist_ok=True)
        if os.path.exists(self.nsfile):
            with open(self.nsfile) as f:
                ns = json.load(f)
            self.next_id = ns['next']
            self.dirs = {int(k): v for k, v in ns['dirs'].items()}
        else:
            self.next_id = 1
            self.dirs = {0: {}}
        self.rebuild()

    # --- the durable layer -------------------------------------------------------------------

    def rebuild(self):
        """live/ := what is durable: the names of the durable directories, the durable data of each file."""
        shutil.rmtree(self.live, ignore_errors=True)
        os.mkdir(self.live, 0o755)
        self.by_ino = {os.lstat(self.live).st_ino: Node(0)}
        made = {}  # file id -> first live path (hard links)
        seen_dirs = {0}

        def build(dir_id, path):
            for name, (kind, node_id, extra) in self.dirs.get(dir_id, {}).items():
                p = os.path.join(path, name)
                if kind == 'd':
                    if node_id in seen_dirs:
                        continue  # a directory renamed between two directories, durable in both
                    seen_dirs.add(node_id)
                    os.mkdir(p, extra & 0o7777)
                    build(node_id, p)
                elif kind == 'f':
                    if node_id in made:
                        os.link(made[node_id], p)
                    else:
                        src = os.path.join(self.data, str(node_id))
                        if os.path.exists(src):
                            shutil.copyfile(src, p)
                        else:
                            open(p, 'wb').close()
                        os.chmod(p, extra & 0o7777)
                        made[node_id] = p
                elif kind == 'l':
                    os.symlink(extra, p)
                else:  # a socket or fifo left by a process that is gone, as a disk keeps it
                    os.mknod(p, extra)
                self.by_ino[os.lstat(p).st_ino] = Node(node_id)

        build(0, self.live)
        # data of files no durable name reaches any more: gone with the power
        for f in os.listdir(self.data):
            if int(f) not in made:
                os.unlink(os.path.join(self.data, f))

    def save_namespace(self):
        tmp = self.nsfile + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({'next': self.next_id, 'dirs': self.dirs}, f)
        os.replace(tmp, self.nsfile)

    def new_node(self, live_path):
        """A name just created in live/: a new file (or directory) with an id of its own."""
        with self.mu:
            node = Node(self.next_id)
            self.next_id += 1
            self.by_ino[os.lstat(live_path).st_ino] = node
            return node

    def node_at(self, live_path):
        with self.mu:
            ino = os.lstat(live_path).st_ino
            node = self.by_ino.get(ino)
            return node if node is not None else self.new_node(live_path)

    def persist(self, node, fd, ranges, min_size):
        """Make these ranges of the file (and its size) durable, from the live file open as fd."""
        size = os.fstat(fd).st_size
        dur = os.open(os.path.join(self.data, str(node.id)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if min_size is not None:
                os.ftruncate(dur, min(min_size, os.fstat(dur).st_size))
            os.ftruncate(dur, size)
            for a, b in merge(ranges):
                b = min(b, size)
                while a < b:
                    chunk = os.pread(fd, min(b - a, 1 << 20), a)
                    if not chunk:
                        break
                    os.pwrite(dur, chunk, a)
                    a += len(chunk)
                    self.stats['bytesPersisted'] += len(chunk)
        finally:
            os.close(dur)

    def wait_for_disk(self):
        lo, hi = self.delay
        if hi > 0:
            time.sleep(random.uniform(lo, hi) / 1000)

    def check(self):
        if self.frozen:
            raise FuseOSError(errno.EIO)

    def live_path(self, path):
        return os.path.join(self.live, path.lstrip('/'))

    # --- the control socket ------------------------------------------------------------------

    def serve_control(self):
        path = os.path.join(self.state, 'ctl')
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)

        def client(conn):
            with conn, conn.makefile('rw') as f:
                for line in f:
                    try:
                        answer = self.command(line.split())
                    except Exception as e:  # an answer, never a dead control thread
                        answer = 'error ' + str(e)
                    f.write(answer + '\n')
                    f.flush()

        def loop():
            while True:
                conn, _ = srv.accept()
                threading.Thread(target=client, args=(conn,), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()

    def command(self, words):
        if not words:
            return 'error empty'
        cmd = words[0]
        if cmd == 'cut':
            with self.mu:
                if not self.frozen:
                    if 'torn' in words[1:]:
                        self.tear()
                    self.stats['droppedBytes'] = self.pending_bytes()
                    self.frozen = True
            return 'ok'
        if cmd == 'delay':
            self.delay = (float(words[1]), float(words[2]))
            return 'ok'
        if cmd == 'ignore-fsync':
            self.ignore_fsync = words[1] == '1'
            return 'ok'
        if cmd == 'stats':
            return json.dumps(self.stats)
        if cmd == 'ping':
            return 'ok'
        return 'error unknown command ' + cmd

    def pending_bytes(self):
        nodes = {id(n): n for n in list(self.by_ino.values()) + list(self.fh_node.values())}
        return sum(b - a for n in nodes.values() for a, b in merge(n.dirty))

    def tear(self):
        """Make a random half of the pending pages durable, as writeback before the cut would have."""
        fds = {}
        for fd, node in self.fh_node.items():
            fds.setdefault(node.id, fd)
        for root, dirs, files in os.walk(self.live):
            for name in files:
                p = os.path.join(root, name)
                node = self.by_ino.get(os.lstat(p).st_ino)
                if node is None or not node.dirty or node.id in fds:
                    continue
                try:
                    fds[node.id] = os.open(p, os.O_RDONLY)
                except OSError:
                    pass
        nodes = {n.id: n for n in list(self.by_ino.values()) + list(self.fh_node.values())}
        opened = set(fds.values()) - set(self.fh_node.keys())
        try:
            for node_id, fd in fds.items():
                node = nodes[node_id]
                pages = sorted({p for a, b in merge(node.dirty)
                                for p in range(a // PAGE, (b + PAGE - 1) // PAGE)})
                kept = [p for p in pages if random.random() < 0.5]
                self.stats['tornPages'] += len(kept)
                if not kept:
                    continue
                size = os.fstat(fd).st_size
                dur = os.open(os.path.join(self.data, str(node_id)), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    for p in kept:
                        chunk = os.pread(fd, PAGE, p * PAGE)[: max(0, size - p * PAGE)]
                        if chunk:
                            os.pwrite(dur, chunk, p * PAGE)
                finally:
                    os.close(dur)
        finally:
            for fd in opened:
                os.close(fd)

    # --- the filesystem ----------------------------------------------------------------------

    def init(self, path):
        # the mount is up: now the control socket says so
        self.serve_control()

    def getattr(self, path, fh=None):
        self.check()
        st = os.fstat(fh) if fh is not None and fh in self.fh_node else os.lstat(self.live_path(path))
        names = ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_blocks')
        attrs = {k: getattr(st, k) for k in names}
        return attrs | {'st_atime': st.st_atime_ns, 'st_mtime': st.st_mtime_ns, 'st_ctime': st.st_ctime_ns}

    def access(self, path, amode):
        self.check()
        if not os.access(self.live_path(path), amode):
            raise FuseOSError(errno.EACCES)

    def readdir(self, path, fh):
        self.check()
        return ['.', '..'] + os.listdir(self.live_path(path))

    def readlink(self, path):
        self.check()
        return os.readlink(self.live_path(path))

    def statfs(self, path):
        self.check()
        s = os.statvfs(self.live_path(path))
        return {k: getattr(s, k) for k in ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail',
                                           'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def mknod(self, path, mode, dev):
        self.check()
        p = self.live_path(path)
        os.mknod(p, mode, dev)
        self.new_node(p)

    def mkdir(self, path, mode):
        self.check()
        p = self.live_path(path)
        os.mkdir(p, mode)
        self.new_node(p)

    def symlink(self, target, source):
        self.check()
        p = self.live_path(target)
        os.symlink(source, p)
        self.new_node(p)

    def link(self, target, source):
        self.check()
        os.link(self.live_path(source), self.live_path(target))

    def unlink(self, path):
        self.check()
        p = self.live_path(path)
        with self.mu:
            st = os.lstat(p)
            os.unlink(p)
            # its last name gone: the backing filesystem may give its inode number to a new file
            if st.st_nlink <= 1:
                self.by_ino.pop(st.st_ino, None)

    def rmdir(self, path):
        self.check()
        p = self.live_path(path)
        with self.mu:
            ino = os.lstat(p).st_ino
            os.rmdir(p)
            self.by_ino.pop(ino, None)

    def rename(self, old, new):
        self.check()
        src, dst = self.live_path(old), self.live_path(new)
        with self.mu:
            gone = os.lstat(dst) if os.path.lexists(dst) else None
            os.rename(src, dst)
            # the file it replaced lost its last name: its inode number may be reused
            replaced = gone is not None and gone.st_ino != os.lstat(dst).st_ino
            if replaced and (gone.st_nlink <= 1 or stat.S_ISDIR(gone.st_mode)):
                self.by_ino.pop(gone.st_ino, None)

    def chmod(self, path, mode):
        self.check()
        os.chmod(self.live_path(path), mode)

    def chown(self, path, uid, gid):
        self.check()
        os.chown(self.live_path(path), uid, gid)

    def utimens(self, path, times=None):
        self.check()
        os.utime(self.live_path(path), ns=times)

    def open(self, path, flags):
        self.check()
        p = self.live_path(path)
        # offsets come from the kernel (O_APPEND would make pwrite ignore them); O_TRUNC is a truncate
        fd = os.open(p, flags & ~(os.O_APPEND | os.O_TRUNC | os.O_CREAT | os.O_EXCL))
        node = self.node_at(p)
        with self.mu:
            self.fh_node[fd] = node
        if flags & os.O_TRUNC:
            self.truncate(path, 0, fd)
        return fd

    def create(self, path, mode, fi=None):
        self.check()
        p = self.live_path(path)
        existed = os.path.lexists(p)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, mode)
        node = self.node_at(p) if existed else self.new_node(p)
        with self.mu:
            self.fh_node[fd] = node
        return fd

    def read(self, path, size, offset, fh):
        self.check()
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        self.check()
        with self.mu:
            n = os.pwrite(fh, data, offset)
            node = self.fh_node[fh]
            node.dirty.append((offset, offset + n))
            if len(node.dirty) > 4096:
                node.dirty = [tuple(r) for r in merge(node.dirty)]
            self.stats['writes'] += 1
        return n

    def truncate(self, path, length, fh=None):
        self.check()
        with self.mu:
            if fh is not None and fh in self.fh_node:
                os.ftruncate(fh, length)
                node = self.fh_node[fh]
            else:
                p = self.live_path(path)
                os.truncate(p, length)
                node = self.node_at(p)
            node.min_size = length if node.min_size is None else min(node.min_size, length)

    def flush(self, path, fh):
        # close() is not fsync: nothing becomes durable here
        self.check()

    def release(self, path, fh):
        # always, even after the cut: the dead processes' handles must be let go
        with self.mu:
            self.fh_node.pop(fh, None)
        os.close(fh)

    def fsync(self, path, datasync, fh):
        self.check()
        self.wait_for_disk()
        with self.mu:
            self.check()  # the power went while the disk was busy: this fsync never finished
            self.stats['fsyncs'] += 1
            if self.ignore_fsync:
                return
            node = self.fh_node[fh]
            ranges, min_size = node.dirty, node.min_size
            node.dirty, node.min_size = [], None
            self.persist(node, fh, ranges, min_size)

    def fsyncdir(self, path, datasync, fh):
        self.check()
        if path is None:
            return  # a directory removed while open: nothing of it is reachable
        self.wait_for_disk()
        with self.mu:
            self.check()
            self.stats['dirsyncs'] += 1
            if self.ignore_fsync:
                return
            p = self.live_path(path)
            entries = {}
            for name in os.listdir(p):
                c = os.path.join(p, name)
                st = os.lstat(c)
                child = self.node_at(c)
                if stat.S_ISDIR(st.st_mode):
                    entries[name] = ['d', child.id, st.st_mode]
                    self.dirs.setdefault(child.id, {})
                elif stat.S_ISREG(st.st_mode):
                    entries[name] = ['f', child.id, st.st_mode]
                    # a name made durable before the file's data: it comes back empty
                    open(os.path.join(self.data, str(child.id)), 'ab').close()
                elif stat.S_ISLNK(st.st_mode):
                    entries[name] = ['l', child.id, os.readlink(c)]
                else:
                    entries[name] = ['s', child.id, st.st_mode]
            self.dirs[self.node_at(p).id] = entries
            self.save_namespace()


def main(argv):
    if len(argv) == 3 and argv[1] == '--probe':
        state = argv[2] + '.state'
        os.makedirs(argv[2], exist_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state)
        pid = os.fork()
        if pid == 0:
            FUSE(LazyFs(state), argv[2], foreground=True, fsname='lazyfs')
            os._exit(0)
        for _ in range(100):
            if os.path.exists(os.path.join(state, 'ctl')):
                break
            time.sleep(0.05)
        ok = os.path.ismount(argv[2])
        os.system('fusermount -u ' + argv[2] + ' 2>/dev/null || umount ' + argv[2])
        os.waitpid(pid, 0)
        shutil.rmtree(state, ignore_errors=True)
        return 0 if ok else 1
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    state, mountpoint = argv[1], argv[2]
    os.makedirs(state, exist_ok=True)
    # big_writes: 128 KiB writes (libfuse 2 sends 4 KiB otherwise); hard_remove: an unlinked open file
    # is not kept as .fuse_hidden* (which would show up in a directory's durable listing)
    FUSE(LazyFs(state), mountpoint, foreground=True, fsname='lazyfs', big_writes=True, hard_remove=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
