// Loaded with --import: this process's clock runs CLOCK_SHIFT_MS ahead (or behind) of the machine's,
// as a server's clock may be off its fleet's. Date and Date.now both shift; performance.now does not.
const shift = Number(process.env.CLOCK_SHIFT_MS ?? 0)
const RealDate = Date
class ShiftedDate extends RealDate {
  constructor(...args) {
    super(...(args.length === 0 ? [RealDate.now() + shift] : args))
  }
  static now() {
    return RealDate.now() + shift
  }
}
globalThis.Date = ShiftedDate
