// Epoch milliseconds → ISO-8601 UTC, as Date#toISOString writes it, about six times
// faster: the date part is computed once per day, the time part by arithmetic. Every
// response carries several timestamps, and a page of messages fifty.
const DAY_MS = 86_400_000;
// The last two days' date parts: a response often mixes today and tomorrow (a session
// that expires after midnight), and one day cached would be recomputed at each switch.
let cachedDay = NaN;
let cachedPrefix = '';
let otherDay = NaN;
let otherPrefix = '';

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

export function isoTime(epochMs: number): string {
  const day = Math.floor(epochMs / DAY_MS);
  // Years outside 0000-9999 have a different form; leave them to Date.
  if (epochMs < -62_167_219_200_000 || epochMs >= 253_402_300_800_000) return new Date(epochMs).toISOString();
  if (day !== cachedDay) {
    const known = day === otherDay;
    const prefix = known ? otherPrefix : new Date(day * DAY_MS).toISOString().slice(0, 11);
    otherDay = cachedDay;
    otherPrefix = cachedPrefix;
    cachedDay = day;
    cachedPrefix = prefix;
  }
  let rest = epochMs - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${cachedPrefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(rest - seconds * 1000)}Z`;
}
