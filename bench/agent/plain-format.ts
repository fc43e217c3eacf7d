/**
 * 12,345.6 without Intl: toLocaleString() pulls ICU's data pages into the process (+6.5 MB of resident
 * memory on Node 20), and the agent phases print progress from the very process whose memory is measured.
 * (Not harness.ts's fmt: importing harness.ts would load pg into that process too.)
 */
export const fmt = (n: number, digits = 0): string => {
  if (!Number.isFinite(n)) return '-'
  const [int = '', frac] = Math.abs(n).toFixed(digits).split('.')
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return `${n < 0 ? '-' : ''}${grouped}${frac === undefined ? '' : `.${frac}`}`
}

/** Bytes in MiB. */
export const mb = (b: number): number => b / 1024 / 1024
