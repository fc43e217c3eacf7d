/**
 * Devices 0..n-1 ordered by a time each holds in `keys` (their next advert): a binary min-heap
 * over typed arrays, so taking the earliest and putting one back are O(log n) with no allocation.
 * The caller changes a device's key only while it is out of the heap (between pop and push).
 */
export class DeviceHeap {
  private readonly heap: Int32Array
  private count = 0

  constructor(
    capacity: number,
    private readonly keys: Float64Array,
  ) {
    this.heap = new Int32Array(capacity)
  }

  get size(): number {
    return this.count
  }

  /** The device with the earliest key (undefined when empty). */
  peek(): number | undefined {
    return this.count === 0 ? undefined : (this.heap[0] as number)
  }

  /** Put device `i` in by its key (sift up). */
  push(i: number): void {
    const heap = this.heap
    let slot = this.count++
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      const parentDevice = heap[parent] as number
      if (!this.less(i, parentDevice)) break
      heap[slot] = parentDevice
      slot = parent
    }
    heap[slot] = i
  }

  /** Take the device with the earliest key out (sift down). */
  pop(): void {
    const heap = this.heap
    const last = heap[--this.count] as number
    if (this.count === 0) return
    let slot = 0
    const size = this.count
    for (;;) {
      const left = 2 * slot + 1
      if (left >= size) break
      const right = left + 1
      let child = left
      if (right < size && this.less(heap[right] as number, heap[left] as number)) child = right
      if (!this.less(heap[child] as number, last)) break
      heap[slot] = heap[child] as number
      slot = child
    }
    heap[slot] = last
  }

  private less(a: number, b: number): boolean {
    return (this.keys[a] as number) < (this.keys[b] as number)
  }
}
