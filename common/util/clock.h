/* clock.h - the clocks of Saturn: wall-clock milliseconds for timestamps that
 * leave the process (job and event times, heartbeats), and the monotonic
 * clock for durations, timeouts and rates, which must not jump when the
 * system time is set.
 */
#ifndef SATURN_CLOCK_H
#define SATURN_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
static inline int64_t sat_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds on the monotonic clock (CLOCK_MONOTONIC); only differences
 * mean anything. */
static inline uint64_t sat_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Seconds on the monotonic clock, with nanosecond resolution. */
static inline double sat_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
