// The go tool pprof command the contention page prints for each view: the
// flags that select what the page's filters show. Inlined into
// contention.html by the build, ahead of contention.js.
'use strict';

function shellQuote(s) {
  return "'" + s.replace(/'/g, "'\\''") + "'";
}

// A value for pprof's -tagfocus=key=value that selects exactly `s`, as the
// page's filter does: pprof reads the value as regular expressions (RE2),
// split at commas, each matching anywhere in a label ("db" would also take
// "db.pool"), so the name is anchored, its metacharacters escaped, and its
// commas written \x2c. pprof first parses the value's first run of digits
// as an int64 (to try it as a numeric range) and panics if it overflows, so
// every 18 digits of a run are followed by (?:), which matches nothing.
function pprofExactly(s) {
  return '^' + s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&').replace(/,/g, '\\x2c')
    .replace(/[0-9]{18}(?=[0-9])/g, '$&(?:)') + '$';
}

// The flag that selects the samples of lock `lock` as the page's lock filter
// has them (contention.js: lockOf). '(unnamed)' is a lock label that is
// absent or empty (pprof's reader drops an empty one): what
// -tagignore=lock=. keeps.
function pprofLockFilter(lock) {
  return lock === '(unnamed)' ? '-tagignore=lock=.' : '-tagfocus=lock=' + pprofExactly(lock);
}

// The flag that selects the samples of profile.json `p` whose label `key`
// is `value` as the page's label filter has them (contention.js: labelIs).
// A numeric label (a JSON number: shard) takes pprof's numeric form key=N,
// since pprof's regular expressions match string labels only.
function pprofLabelFilter(p, key, value) {
  const numeric = p.samples.some((s) => typeof s.l[key] === 'number');
  if (numeric && /^[+-]?[0-9]+$/.test(value)) return '-tagfocus=' + key + '=' + Number(value);
  return '-tagfocus=' + key + '=' + pprofExactly(value);
}

// The command for profile `name` fetched from `raw` (with the token, if
// one is set, by curl first), with -sample_index (none if '') and the
// filters (the lock's first). Returns the command, the flags of its last
// go tool pprof and whether the first filter went into a file of its own:
// pprof keeps only the last -tagfocus (and the last -tagignore), so with
// two of one kind the first is applied into a file the second command
// reads.
function pprofCommand(name, raw, token, sampleIndex, filters) {
  const flags = ['-http=:'];
  if (sampleIndex) flags.push('-sample_index=' + sampleIndex);
  let source = token ? name + '.pb.gz' : shellQuote(raw);
  let cmd = token
    ? 'curl -H "Authorization: Bearer $LOCKPROF_ADMIN_TOKEN" -o ' + name + '.pb.gz ' + shellQuote(raw) + ' && '
    : '';
  const kind = (f) => f.slice(0, f.indexOf('='));
  const twoFilters = filters.length === 2 && kind(filters[0]) === kind(filters[1]);
  if (twoFilters) {
    cmd += 'go tool pprof -proto -output=' + name + '-lock.pb.gz ' + shellQuote(filters[0]) + ' ' + source + ' && ';
    source = name + '-lock.pb.gz';
  }
  flags.push(...filters.slice(twoFilters ? 1 : 0));
  return { cmd: cmd + 'go tool pprof ' + flags.map(shellQuote).join(' ') + ' ' + source, flags, twoFilters };
}
